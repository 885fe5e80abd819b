"""The bugs service's part of the OpenAPI document: every route declared, the part valid on its
own, and what the document promises players (the public shapes are allow-lists) and SDKs.

The responses themselves are checked against these declarations by every integration test
(BUGNET_CHECK_RESPONSES=1); this reads the declarations.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from openapi_spec_validator import validate

from bugnet_gateway import openapi

# What a player must never be shown (spec §5: public fields only; no email, no internal comments).
PRIVATE = {"player_email", "email", "priority", "assignee", "labels", "os_info", "device_info",
           "fingerprint", "internal", "is_regression", "reporter", "user_id", "source",
           "git_issue_url"}


@cache
def bugs_routes() -> tuple[openapi.Route, ...]:
    return tuple(r for r in openapi.service_routes() if r.service == "bugs")


@cache
def document() -> dict[str, Any]:
    return openapi.build_document(list(bugs_routes()))


def schema(name: str) -> dict[str, Any]:
    return document()["components"]["schemas"][name]  # type: ignore[no-any-return]


def fields_reachable(name: str, seen: set[str] | None = None) -> set[str]:
    """Every property name documented in `name` and the schemas it refers to."""
    seen = set() if seen is None else seen
    if name in seen:
        return set()
    seen.add(name)
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                found.update(fields_reachable(ref.rsplit("/", 1)[1], seen))
            found.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema(name))
    return found


def test_every_bugs_route_declares_its_operation() -> None:
    missing = [f"{r.method} {r.rule}" for r in bugs_routes() if r.operation is None]

    assert missing == []
    assert len(bugs_routes()) >= 61


def test_the_bugs_part_of_the_document_is_valid_openapi() -> None:
    validate(document())


def test_public_shapes_document_no_private_field() -> None:
    for name in ("PublicBugOut", "PublicBugDetailOut", "PublicChangelogOut", "PublicTrackerOut",
                 "BrandingOut"):
        assert fields_reachable(name) & PRIVATE == set(), name
    assert "comments" in fields_reachable("PublicBugDetailOut")


def test_public_routes_answer_public_shapes_only() -> None:
    for path, ops in document()["paths"].items():
        if "/public/" not in path:
            continue
        for method, op in ops.items():
            ok = op["responses"].get("200") or op["responses"]["201"]
            data = ok["content"]["application/json"]["schema"]["properties"]["data"]
            refs = {data.get("$ref") or data["items"]["$ref"]}
            names = {r.rsplit("/", 1)[1] for r in refs}
            for name in names:
                assert fields_reachable(name) & PRIVATE == set(), f"{method} {path}: {name}"


def test_members_see_the_player_email_and_who_reported() -> None:
    bug = schema("BugOut")

    assert {"player_email", "reporter", "assignee", "labels"} <= set(bug["required"])


def test_sdk_routes_take_the_api_key_and_the_submit_answers_201() -> None:
    paths = document()["paths"]
    for path, method in (("/api/bugs/settings", "get"), ("/api/bugs/submit", "post"),
                         ("/api/session-replays", "post")):
        assert paths[path][method]["security"] == [{"apiKey": []}], path
    assert "201" in paths["/api/bugs/submit"]["post"]["responses"]
    assert "201" in paths["/api/session-replays"]["post"]["responses"]
    form = paths["/api/session-replays"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in form
