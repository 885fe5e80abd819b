"""Auth abuse through the gateway (issue 7): forged and edge-case tokens, revoked sessions,
password and API-key guessing, and the login timing of known vs unknown accounts.

Edge-case tokens are signed with the auth service's REAL current signing key (read from its
database, as an attacker who stole nothing could not), so each refusal is for the reason the
test names and not for a bad signature. A correctly re-signed copy is accepted: the control.
"""

from __future__ import annotations

import base64
import json
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
from e2e.support import PASSWORD, assert_envelope_error, auth, signup
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from bugnet_stack import Stack

pytestmark = pytest.mark.e2e

# Bearer routes of every service: a token refused at the gateway is refused everywhere, and
# one the gateway passes must also pass each service's own verification.
BEARER_PROBES = ("/auth/me", "/projects", "/notifications")


def _psycopg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


def real_signing_key(stack: Stack) -> ECKey:
    with psycopg.connect(_psycopg_dsn(stack.urls.database_urls["auth"])) as conn:
        row = conn.execute("SELECT kid, private_pem FROM signing_keys WHERE retired_at IS NULL "
                           "ORDER BY created_at DESC LIMIT 1").fetchone()
    assert row is not None
    return ECKey.import_key(row[1], {"kid": row[0]})


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, body, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (json.loads(base64.urlsafe_b64decode(pad(head))),
            json.loads(base64.urlsafe_b64decode(pad(body))))


def test_edge_case_tokens_signed_with_the_real_key_are_refused_for_their_reason(
        stack: Stack, api: httpx.Client) -> None:
    token, _, _ = signup(api)
    header, claims = _claims(token)
    key = real_signing_key(stack)
    now = int(time.time())

    def signed(c: dict[str, Any], h: dict[str, Any] | None = None) -> str:
        return jwt.encode(h or header, c, key, algorithms=["ES256"])

    control = signed(claims)
    for path in BEARER_PROBES:
        assert api.get(path, headers=auth(control)).status_code == 200, path

    without_exp = {k: v for k, v in claims.items() if k != "exp"}
    refused = {
        "expired beyond the clock skew": signed(claims | {"exp": now - 300, "iat": now - 900}),
        "not valid before the future": signed(claims | {"nbf": now + 3600}),
        "another issuer": signed(claims | {"iss": "evil"}),
        "another audience": signed(claims | {"aud": "someone-else"}),
        "no expiry at all": signed(without_exp),
    }
    for reason, forged in refused.items():
        for path in BEARER_PROBES:
            resp = api.get(path, headers=auth(forged))
            assert resp.status_code == 401, f"{reason} at {path}: {resp.status_code} {resp.text}"
            assert_envelope_error(resp, 401)

    # Sessions and users are known to auth alone: the other services verify a token without
    # state (signature, issuer, audience, expiry, the revocation list), so only a holder of
    # the signing key could mint these, and retiring that key ends them everywhere.
    unknown = {
        "a session that never existed": signed(claims | {"sid": str(uuid.uuid4())}),
        "a user that never existed": signed(claims | {"sub": str(uuid.uuid4()),
                                                      "sid": str(uuid.uuid4())}),
    }
    for forged in unknown.values():
        assert_envelope_error(api.get("/auth/me", headers=auth(forged)), 401)


def test_algorithm_confusion_and_unsigned_tokens_are_refused(api: httpx.Client) -> None:
    token, _, _ = signup(api)
    header, claims = _claims(token)
    jwks = api.get("/auth/jwks.json").json()["keys"]
    public_json = json.dumps(jwks[0]).encode()
    forged = {
        # HS256 keyed with the published public key: the classic RS/ES -> HS confusion.
        "hs256 with the public key": jwt.encode(
            {"alg": "HS256", "kid": header["kid"], "typ": "JWT"}, claims,
            OctKey.import_key(public_json), algorithms=["HS256"]),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "alg none, upper case": f"{_b64({'alg': 'NONE', 'kid': header['kid']})}.{_b64(claims)}.",
        "signature stripped": token.rsplit(".", 1)[0] + ".",
        "an unknown kid": jwt.encode({**header, "kid": "nope"}, claims,
                                     ECKey.generate_key("P-256", private=True),
                                     algorithms=["ES256"]),
        "a 16 KB header": f"{_b64(header | {'pad': 'x' * 16_000})}.{_b64(claims)}.sig",
    }
    for reason, value in forged.items():
        for path in BEARER_PROBES:
            resp = api.get(path, headers=auth(value))
            assert resp.status_code in (401, 431), f"{reason} at {path}: {resp.status_code}"
            assert resp.json()["ok"] is False, reason


def test_a_logged_out_token_is_refused_by_every_service_within_a_second(
        api: httpx.Client) -> None:
    token, _, _ = signup(api)
    assert api.post("/auth/logout", headers=auth(token)).status_code == 200
    deadline = time.monotonic() + 1.0
    pending = set(BEARER_PROBES)
    while pending and time.monotonic() < deadline + 0.5:
        pending = {p for p in pending if api.get(p, headers=auth(token)).status_code != 401}
    assert not pending, f"still accepted after logout: {sorted(pending)}"


def test_password_guessing_hits_the_login_limit_with_one_message(
        new_client: Callable[..., httpx.Client]) -> None:
    api = new_client()
    _, user, address = signup(new_client())
    statuses = []
    for i in range(12):
        resp = api.post("/auth/login", json={"email": address, "password": f"guess-{i}-wrong"})
        statuses.append(resp.status_code)
        if resp.status_code == 401:
            assert resp.json()["error"] == "Invalid email or password"
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]
    # The limit is per address: the owner, elsewhere, still signs in.
    assert new_client().post("/auth/login", json={"email": address,
                                                  "password": PASSWORD}).status_code == 200
    assert user["email"] == address


def test_api_key_guessing_is_refused_then_rate_limited(
        new_client: Callable[..., httpx.Client]) -> None:
    api = new_client()
    statuses = []
    for _ in range(33):
        guess = "sk_live_" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
        resp = api.post("/sessions/start", headers={"X-API-Key": guess},
                        json={"session_token": uuid.uuid4().hex, "platform": "windows",
                              "version": "1.0.0"})
        statuses.append(resp.status_code)
        assert resp.json()["ok"] is False
    assert statuses[:30] == [401] * 30
    assert statuses[30:] == [429] * 3


@pytest.mark.heavy
def test_login_takes_as_long_for_unknown_as_for_known_emails(
        new_client: Callable[..., httpx.Client]) -> None:
    """Each attempt leaves from its own address (the login limit is per address); attempts
    alternate, so machine noise hits both groups alike. Medians must agree within 20%."""
    _, _, known = signup(new_client())
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    for i in range(30):
        for kind in ("known", "unknown"):
            address = known if kind == "known" else f"nobody-{uuid.uuid4().hex[:8]}@example.com"
            client = new_client()
            started = time.perf_counter()
            resp = client.post("/auth/login", json={"email": address, "password": f"wrong-{i}"})
            timings[kind].append(time.perf_counter() - started)
            assert resp.status_code == 401
    known_ms = statistics.median(timings["known"]) * 1000
    unknown_ms = statistics.median(timings["unknown"]) * 1000
    print(f"login median: known {known_ms:.1f} ms, unknown {unknown_ms:.1f} ms")
    assert abs(known_ms - unknown_ms) / max(known_ms, unknown_ms) < 0.20
