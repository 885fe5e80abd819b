"""Schemathesis through the gateway: what the bounded runs share (tests/e2e/test_openapi_e2e.py,
the short one inside `make test`, and tests/security/test_input_abuse.py, the long one).

Cases are generated from the OpenAPI document the gateway serves, sent through Envoy as a
signed-in project owner with the project's API key, each from the next of a pool of loopback
source addresses (per-IP rate limits stay out of the way without being switched off), and
checked by `check_case`: no 5xx (except a documented 502: an external service the request
calls is unreachable, as it is in tests), every response in the envelope, every documented
response matching its schema. Path parameters are mostly the real project and bug (so
generated bodies reach the handlers, not only 404s); operations that would end the session
(logout, password change, account or project deletion, key rotation) get generated values
only, so they cannot sabotage the rest of the run.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import schemathesis
from e2e.support import auth, signup
from hypothesis import reject
from schemathesis.checks import response_schema_conformance

from bugnet_gateway.openapi import DOC_FILE
from bugnet_gateway.render import STATIC_DIR
from bugnet_stack import Stack

SCHEMA = schemathesis.openapi.from_path(str(STATIC_DIR / DOC_FILE))

SESSION_ENDING = {
    ("DELETE", "/api/auth/me"),
    ("POST", "/api/auth/logout"),
    ("PUT", "/api/auth/password"),
    ("DELETE", "/api/projects/{slug}"),
    ("POST", "/api/projects/{slug}/api-key/regenerate"),
}


def addresses(third_octet: int, count: int) -> list[str]:
    """`count` loopback addresses from 127.0.<third_octet>.2 on (250 per octet)."""
    return [f"127.0.{third_octet + i // 250}.{i % 250 + 2}" for i in range(count)]


class Clients:
    """httpx clients bound to the given source addresses, handed out in turn."""

    def __init__(self, base_url: str, source_addresses: list[str]) -> None:
        self.clients = [httpx.Client(base_url=base_url, timeout=30,
                                     transport=httpx.HTTPTransport(local_address=a))
                        for a in source_addresses]
        self._cycle = itertools.cycle(self.clients)

    def next(self) -> httpx.Client:
        return next(self._cycle)

    def close(self) -> None:
        for c in self.clients:
            c.close()


@contextmanager
def fuzz_world(stack: Stack, *, setup_address: str, source_addresses: list[str],
               label: str) -> Iterator[dict[str, Any]]:
    """A signed-up owner, a project and one bug to aim the generated requests at; prints the
    statuses seen at the end."""
    clients = Clients(stack.urls.gateway, source_addresses)
    api = httpx.Client(base_url=stack.urls.gateway + "/api", timeout=30,
                       transport=httpx.HTTPTransport(local_address=setup_address))
    try:
        token, _user, _ = signup(api)
        created = api.post("/projects", json={"name": "Fuzzed Game"}, headers=auth(token))
        assert created.status_code == 201, created.text
        project = created.json()["data"]
        bug = api.post(f"/projects/{project['slug']}/bugs", headers=auth(token),
                       json={"title": "A bug to fuzz", "description": "steps",
                             "category": "gameplay"})
        assert bug.status_code == 201, bug.text
        statuses: Counter[int] = Counter()
        yield {"clients": clients, "token": token, "slug": project["slug"],
               "api_key": project["api_key"], "bug_id": bug.json()["data"]["id"],
               "statuses": statuses}
        print(f"\n{label}: {sum(statuses.values())} requests, "
              f"statuses {dict(sorted(statuses.items()))}")
    finally:
        clients.close()
        api.close()


def check_case(case: schemathesis.Case, world: dict[str, Any]) -> httpx.Response:
    """Send `case` through the gateway and apply the checks the module docstring lists."""
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
    client: httpx.Client = world["clients"].next()
    try:
        request = client.build_request(**httpx_kwargs(kwargs))
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
        assert_envelope(response)
    return response


def assert_envelope(response: httpx.Response) -> None:
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


def httpx_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
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
