"""The OpenAPI document covers exactly what the gateway serves, and the served files are current.

"Served" is read from the code on both sides: the services' Flask rules under /api (each with
its declaration) and the gateway's route table (what Envoy routes, and to whom).
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest
from openapi_spec_validator import validate

from bugnet_gateway import openapi
from bugnet_gateway.render import STATIC_DIR
from bugnet_gateway.routes import FAMILIES, resolve

# Families that no documented operation needs: non-POST login exists only to give a 405.
UNDOCUMENTED_FAMILIES = {"auth.login-other-methods"}


@cache
def routes() -> tuple[openapi.Route, ...]:
    return tuple(openapi.service_routes())


@cache
def document() -> dict[str, Any]:
    return openapi.build_document(list(routes()))


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in document()["paths"].items()
            for method, op in ops.items()]


def sample(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "sample-1", path)


def test_every_route_a_service_serves_is_declared() -> None:
    missing = [f"{r.method} {r.rule} ({r.endpoint})" for r in routes() if r.operation is None]

    assert missing == []


def test_every_service_route_is_reachable_through_the_gateway_at_its_owner() -> None:
    wrong = [f"{r.method} {r.path}: {r.family.name if r.family else 'not routed'}"
             for r in routes() if r.family is None or r.family.service != r.service]

    assert wrong == []


def test_every_documented_operation_is_routed_by_the_gateway() -> None:
    unrouted = [f"{m.upper()} {p}" for p, m, _ in operations() if resolve(m.upper(), sample(p)) is None]

    assert unrouted == []


def test_every_gateway_family_is_documented() -> None:
    used = {resolve(m.upper(), sample(p)) for p, m, _ in operations()}
    undocumented = [f.name for f in FAMILIES if f not in used and f.name not in UNDOCUMENTED_FAMILIES]

    assert undocumented == []


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = document()

    assert doc["openapi"] == "3.1.0"
    validate(doc)


def test_operation_ids_are_unique_and_every_operation_is_tagged_and_summarised() -> None:
    ids = [op["operationId"] for _, _, op in operations()]

    assert len(ids) == len(set(ids))
    assert all(op["summary"] and op["tags"] for _, _, op in operations())


def test_every_api_response_is_documented_in_the_envelope() -> None:
    doc = document()
    for path, method, op in operations():
        if op["tags"] == ["Documentation"] or op.get("x-bugnet-envelope") is False:
            continue  # the document and its page, the JWKS, a downloaded file
        for status, response in op["responses"].items():
            if status.startswith("2"):
                schema = response["content"]["application/json"]["schema"]
                assert schema["properties"]["ok"] == {"const": True}, f"{method} {path}"
                assert "data" in schema["required"], f"{method} {path}"
            else:
                name = response["$ref"].rsplit("/", 1)[1]
                content = doc["components"]["responses"][name]["content"]
                assert content["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"}


def test_only_documents_and_files_are_outside_the_envelope() -> None:
    raw = sorted(f"{m.upper()} {p}" for p, m, op in operations()
                 if op.get("x-bugnet-envelope") is False)

    assert raw == ["GET /api/auth/jwks.json",
                   "GET /api/projects/{slug}/bugs/{bug_id}/attachments/{attachment_id}"]


def test_security_follows_the_route_table() -> None:
    for path, method, op in operations():
        family = resolve(method.upper(), sample(path))
        assert family is not None
        security = op["security"]
        if family.auth == "bearer":
            assert security == [{"bearerAuth": []}], f"{method} {path}"
        elif family.auth == "optional":
            assert security == [{}, {"bearerAuth": []}], f"{method} {path}"
        else:
            assert security in ([], [{"apiKey": []}]), f"{method} {path}"


def test_the_sdk_endpoints_take_the_project_api_key() -> None:
    sdk = {(m, p) for p, m, op in operations() if op["security"] == [{"apiKey": []}]}

    for path in ("/api/bugs/submit", "/api/sessions/start", "/api/sessions/end",
                 "/api/perf/snapshot"):
        assert ("post", path) in sdk


def test_the_served_files_are_regenerated_from_the_code() -> None:
    assert openapi.stale_files() == [], "run `make openapi` and commit the result"


def test_the_page_shows_every_operation() -> None:
    page = (STATIC_DIR / openapi.PAGE_FILE).read_text(encoding="utf-8")

    for _, _, op in operations():
        assert f'id="{op["operationId"]}"' in page


def test_an_undeclared_route_fails_the_build() -> None:
    bare = openapi.Route(service="bugs", method="GET", rule="/api/x", path="/api/x", params=(),
                         endpoint="bugs.x", multi_method=False, operation=None)

    with pytest.raises(openapi.DocumentError, match="GET /api/x"):
        openapi.build_document([bare])


def test_the_json_file_parses_as_the_document() -> None:
    served = json.loads((STATIC_DIR / openapi.DOC_FILE).read_text(encoding="utf-8"))

    assert served == json.loads(json.dumps(document()))
