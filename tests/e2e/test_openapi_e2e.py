"""The served OpenAPI document, its page, and a bounded schemathesis run through the gateway.

The run generates requests for every documented operation from the document itself (about
four examples each, ~500 in all, deterministic), sends them through Envoy as a signed-in
project owner with the project's API key, and requires: no 5xx, every response in the
envelope, and every documented response matching its schema. Path parameters are mostly the
real project and bug (so generated bodies reach the handlers, not only 404s); operations that
would end the session (logout, password change, account or project deletion, key rotation)
get generated values only, so they cannot sabotage the rest of the run.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from e2e.support import auth, signup
from hypothesis import HealthCheck, Phase, reject, settings
from schemathesis.checks import response_schema_conformance

from bugnet_gateway.openapi import DOC_FILE, PAGE_FILE
from bugnet_gateway.render import STATIC_DIR
from bugnet_stack import Stack

SCHEMA = schemathesis.openapi.from_path(str(STATIC_DIR / DOC_FILE))

# Each request leaves from the next of these loopback addresses: per-IP rate limits stay
# out of the way without being switched off (this range is not used by conftest's clients).
ADDRESSES = [f"127.0.{220 + i // 250}.{i % 250 + 2}" for i in range(120)]

SESSION_ENDING = {
    ("DELETE", "/api/auth/me"),
    ("POST", "/api/auth/logout"),
    ("PUT", "/api/auth/password"),
    ("DELETE", "/api/projects/{slug}"),
    ("POST", "/api/projects/{slug}/api-key/regenerate"),
}


class Clients:
    def __init__(self, base_url: str) -> None:
        self.clients = [httpx.Client(base_url=base_url, timeout=30,
                                     transport=httpx.HTTPTransport(local_address=a))
                        for a in ADDRESSES]
        self.next = itertools.cycle(self.clients)

    def close(self) -> None:
        for c in self.clients:
            c.close()


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[dict[str, Any]]:
    clients = Clients(stack.urls.gateway)
    api = httpx.Client(base_url=stack.urls.gateway + "/api", timeout=30,
                       transport=httpx.HTTPTransport(local_address="127.0.219.2"))
    token, _user, _ = signup(api)
    created = api.post("/projects", json={"name": "Fuzzed Game"}, headers=auth(token))
    assert created.status_code == 201, created.text
    project = created.json()["data"]
    bug = api.post(f"/projects/{project['slug']}/bugs", headers=auth(token),
                   json={"title": "A bug to fuzz", "description": "steps", "category": "gameplay"})
    assert bug.status_code == 201, bug.text
    statuses: Counter[int] = Counter()
    yield {"clients": clients, "token": token, "slug": project["slug"],
           "api_key": project["api_key"], "bug_id": bug.json()["data"]["id"],
           "statuses": statuses}
    print(f"\nschemathesis through the gateway: {sum(statuses.values())} requests, "
          f"statuses {dict(sorted(statuses.items()))}")
    clients.close()
    api.close()


def test_the_document_and_page_are_served_by_the_gateway(stack: Stack) -> None:
    with httpx.Client(base_url=stack.urls.gateway, timeout=15,
                      transport=httpx.HTTPTransport(local_address="127.0.219.3")) as client:
        on_disk = json.loads((STATIC_DIR / DOC_FILE).read_text(encoding="utf-8"))
        for prefix in ("/api", "/api/v1"):
            doc = client.get(f"{prefix}/openapi.json")
            assert doc.status_code == 200
            assert doc.headers["content-type"] == "application/json"
            assert doc.json() == on_disk
            page = client.get(f"{prefix}/docs")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assert page.text == (STATIC_DIR / PAGE_FILE).read_text(encoding="utf-8")
        assert client.post("/api/openapi.json").status_code == 404


def _envelope(response: httpx.Response) -> None:
    method = response.request.method
    if method in ("HEAD", "OPTIONS") and not response.content:
        return  # bodiless by definition (an OPTIONS answers with its Allow header)
    assert response.headers.get("content-type", "").startswith("application/json"), (
        f"{method} {response.request.url.path} answered {response.status_code} with "
        f"{response.headers.get('content-type')}: {response.text[:200]!r}")
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("ok"), bool), body
    if body["ok"]:
        assert "data" in body, body
    else:
        assert isinstance(body.get("error"), str) and body["error"], body


@SCHEMA.exclude(tag="Documentation").parametrize()
@settings(max_examples=4, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_fuzzed_requests_get_no_5xx_and_always_the_envelope(
        case: schemathesis.Case, world: dict[str, Any]) -> None:
    if (case.method.upper(), case.path) not in SESSION_ENDING:
        real = {"slug": world["slug"], "bug_id": world["bug_id"], "id": world["bug_id"]}
        for name in list(case.path_parameters or {}):
            if name in real:
                case.path_parameters[name] = real[name]  # type: ignore[index]
        headers = {**auth(world["token"]), "X-API-Key": world["api_key"]}
    else:
        headers = {}
    kwargs = case.as_transport_kwargs(headers=headers)
    kwargs.pop("base_url", None)
    client: httpx.Client = next(world["clients"].next)
    try:
        request = client.build_request(**_httpx_kwargs(kwargs))
        request.read()  # a multipart body is a stream; schemathesis reads it back
        response = client.send(request)
    except httpx.LocalProtocolError:
        reject()  # a header no HTTP client would send (e.g. "Bearer " with no token)
    world["statuses"][response.status_code] += 1
    case.validate_response(response, checks=[response_schema_conformance])
    documented = case.operation.definition.raw["responses"]
    # 5xx only where the document says so: 502 when an external service (GitHub, Steam...)
    # the request calls is unreachable, as it is here.
    assert response.status_code < 500 or (
        response.status_code == 502 and "502" in documented), (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}")
    if case.operation.definition.raw.get("x-bugnet-envelope", True) or response.status_code >= 400:
        _envelope(response)


def _httpx_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """schemathesis speaks `requests`; the few names httpx spells differently."""
    out = dict(kwargs)
    for name in ("verify", "allow_redirects", "timeout", "cert", "proxies", "stream"):
        out.pop(name, None)
    if out.get("data") is None:
        out.pop("data", None)
    elif isinstance(out["data"], bytes | str) and not out.get("files"):
        out["content"] = out.pop("data")
    if out.get("files"):
        # httpx wants bytes or text in every part; generated form values may be numbers.
        out["files"] = [(name, (part[0], part[1] if isinstance(part[1], bytes | str)
                                else str(part[1]), *part[2:]))
                        for name, part in out["files"]]
    return out
