"""The gateway's own answers: unknown routes, bad tokens, limits, caps and a service down."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable

import httpx
import pytest
from e2e.support import PASSWORD, assert_envelope_error, assert_rate_headers, auth, signup

from bugnet_stack import Stack


def test_unknown_route_is_a_404_envelope_with_rate_headers(api: httpx.Client) -> None:
    for path in ("/nope", "/v1/nope", "/auth/nope"):
        resp = api.get(path)
        body = assert_envelope_error(resp, 404)
        assert body["code"] == "not_found"
        assert_rate_headers(resp)


def test_bearer_route_without_or_with_bad_token_is_401_at_the_gateway(api: httpx.Client) -> None:
    token, _, _ = signup(api)
    head, claims_b64, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=" * (-len(claims_b64) % 4)))
    tampered = base64.urlsafe_b64encode(json.dumps(claims | {"sub": str(uuid.uuid4())}).encode())
    expired = base64.urlsafe_b64encode(json.dumps(claims | {"exp": int(time.time()) - 3600}).encode())
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    wrong_kid = base64.urlsafe_b64encode(json.dumps(header | {"kid": "nope"}).encode())
    none_alg = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    variants = {
        "missing": {},
        "garbage": auth("not-a-jwt"),
        "tampered": auth(f"{head}.{tampered.decode().rstrip('=')}.{sig}"),
        "expired": auth(f"{head}.{expired.decode().rstrip('=')}.{sig}"),
        "wrong-kid": auth(f"{wrong_kid.decode().rstrip('=')}.{claims_b64}.{sig}"),
        "alg-none": auth(f"{none_alg.decode().rstrip('=')}.{claims_b64}."),
    }
    for name, headers in variants.items():
        resp = api.get("/auth/me", headers=headers)
        body = assert_envelope_error(resp, 401)
        assert body["code"] == "unauthorized", name
        assert_rate_headers(resp)


def test_login_is_limited_to_ten_a_minute_per_ip(new_client: Callable[..., httpx.Client]) -> None:
    api = new_client()
    other = new_client()
    creds = {"email": "nobody@example.com", "password": PASSWORD}
    statuses = [api.post("/auth/login", json=creds).status_code for _ in range(10)]
    assert statuses == [401] * 10
    limited = api.post("/auth/login", json=creds)
    body = assert_envelope_error(limited, 429)
    assert body["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert_rate_headers(limited)
    # Another IP, own bucket (another email: these 10 failures reached the per-account limit).
    other_creds = {**creds, "email": f"nobody-{uuid.uuid4().hex[:8]}@example.com"}
    assert other.post("/auth/login", json=other_creds).status_code == 401


def test_public_class_allows_thirty_a_minute(api: httpx.Client) -> None:
    statuses = [api.get("/config/public").status_code for _ in range(30)]
    assert statuses == [200] * 30
    assert_envelope_error(api.get("/auth/jwks.json"), 429)  # the class shares one bucket


def test_bodies_over_the_cap_are_413(api: httpx.Client) -> None:
    resp = api.post("/auth/login", content=b"{" + b" " * (10 * 1024 * 1024) + b"}",
                    headers={"content-type": "application/json"})
    body = assert_envelope_error(resp, 413)
    assert body["code"] == "payload_too_large"


def test_request_id_is_returned(api: httpx.Client) -> None:
    resp = api.get("/config/public")
    assert len(resp.headers["x-request-id"]) >= 16


def test_a_stopped_service_gives_503_envelopes_and_health_names_it(
        stack: Stack, api: httpx.Client) -> None:
    stack.supervisor.stop_programs(["bugs-api"], timeout=20)
    try:
        resp = api.get("/bugs/settings", headers={"X-API-Key": "sk_live_" + "a" * 43})
        body = assert_envelope_error(resp, 503)
        assert body["code"] == "service_unavailable"
        assert_rate_headers(resp)
        health = assert_envelope_error(api.get("/health"), 503)
        assert "bugs" in health["error"]
    finally:
        stack.supervisor.start("bugs-api")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and api.get("/health").status_code != 200:
        time.sleep(0.5)
    assert api.get("/health").status_code == 200


@pytest.mark.parametrize("path", ["/auth/me", "/v1/auth/me"])
def test_token_of_a_deleted_user_is_refused(api: httpx.Client, path: str) -> None:
    token, _, _ = signup(api)
    assert api.request("DELETE", "/auth/me", headers=auth(token),
                       json={"password": PASSWORD}).status_code == 200
    assert_envelope_error(api.get(path, headers=auth(token)), 401)
