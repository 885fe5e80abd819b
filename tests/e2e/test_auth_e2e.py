"""Every auth endpoint of spec §4 through the gateway, under /api and /api/v1."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from e2e.support import PASSWORD, assert_envelope_error, assert_rate_headers, auth, email, signup


@pytest.mark.parametrize("prefix", ["/api", "/api/v1"])
def test_the_whole_account_lifecycle(new_client: Callable[..., httpx.Client], prefix: str) -> None:
    api = new_client(prefix)
    token, user, addr = signup(api)
    me = api.get("/auth/me", headers=auth(token))
    assert me.status_code == 200 and me.json()["data"]["id"] == user["id"]
    assert_rate_headers(me)
    assert me.headers["X-RateLimit-Limit"].startswith("120")

    patched = api.patch("/auth/me", headers=auth(token), json={"display_name": "P1"})
    assert patched.json()["data"]["display_name"] == "P1"
    put = api.put("/auth/me", headers=auth(token), json={"avatar": "https://cdn.example.com/p.png"})
    assert put.json()["data"]["avatar"] == "https://cdn.example.com/p.png"

    onboarded = api.post("/auth/onboarding", headers=auth(token),
                         json={"role": "qa", "team_size": 4, "platforms": ["Windows"]})
    assert onboarded.json()["data"]["onboarding"]["completed"] is True

    login = api.post("/auth/login", json={"email": addr.upper(), "password": PASSWORD})
    assert login.status_code == 200
    second = login.json()["data"]["token"]
    changed = api.put("/auth/password", headers=auth(token),
                      json={"current_password": PASSWORD, "new_password": "another good one"})
    assert changed.status_code == 200
    assert_envelope_error(api.get("/auth/me", headers=auth(second)), 401)

    export = api.get("/auth/export", headers=auth(token))
    assert export.status_code == 200
    doc = export.json()["data"]
    assert doc["profile"]["id"] == user["id"]
    assert doc["complete"] is True, doc["services"]

    assert api.post("/auth/logout", headers=auth(token)).status_code == 200
    assert_envelope_error(api.get("/auth/me", headers=auth(token)), 401)


def test_account_deletion_gathers_every_service_and_kills_the_token(api: httpx.Client) -> None:
    token, _, addr = signup(api)
    wrong = api.request("DELETE", "/auth/me", headers=auth(token), json={"password": "nope-nope"})
    assert_envelope_error(wrong, 403)
    resp = api.request("DELETE", "/auth/me", headers=auth(token), json={"password": PASSWORD})
    assert resp.status_code == 200, resp.text
    doc = resp.json()["data"]
    assert doc["profile"]["email"] == addr
    assert doc["complete"] is True
    assert set(doc["services"]) == {"bugs", "analytics", "integrations"}
    assert_envelope_error(api.get("/auth/me", headers=auth(token)), 401)
    assert_envelope_error(api.post("/auth/login", json={"email": addr, "password": PASSWORD}), 401)


def test_jwks_config_and_health_are_public(api: httpx.Client) -> None:
    jwks = api.get("/auth/jwks.json")
    assert jwks.status_code == 200 and jwks.json()["keys"][0]["alg"] == "ES256"
    config = api.get("/config/public")
    assert config.json() == {"ok": True, "data": {"firebase": None, "stripe_publishable_key": None}}
    health = api.get("/health")
    assert health.status_code == 200
    assert health.json()["data"]["status"] == "healthy"
    assert health.json()["data"]["services"] == {"auth": "up", "bugs": "up", "analytics": "up",
                                                 "integrations": "up"}
    assert_rate_headers(health)
    assert health.headers["X-RateLimit-Limit"].startswith("30")


def test_login_failures_are_indistinguishable(api: httpx.Client) -> None:
    _, _, addr = signup(api)
    wrong = assert_envelope_error(api.post("/auth/login", json={"email": addr, "password": "x" * 9}), 401)
    unknown = assert_envelope_error(api.post("/auth/login", json={"email": email(), "password": PASSWORD}), 401)
    assert wrong == unknown


@pytest.mark.parametrize("body, field", [
    ({"email": "a@b", "password": PASSWORD, "display_name": "x"}, "email"),
    ({"email": "a@example.com", "password": "weak", "display_name": "x"}, "password"),
    ({"email": "a@example.com", "password": PASSWORD, "display_name": "x" * 101}, "display_name"),
    ({"email": 7, "password": PASSWORD, "display_name": "x"}, "email"),
])
def test_bad_signups_are_400_envelopes(api: httpx.Client, body: dict, field: str) -> None:
    err = assert_envelope_error(api.post("/auth/signup", json=body), 400)
    assert field in err["details"]


def test_malformed_json_and_wrong_content_type(api: httpx.Client) -> None:
    bad = assert_envelope_error(api.post("/auth/signup", content=b"{oops",
                                         headers={"content-type": "application/json"}), 400)
    assert "Malformed JSON" in bad["error"]
    assert_envelope_error(api.post("/auth/signup", content=b"email=a",
                                   headers={"content-type": "application/x-www-form-urlencoded"}), 415)
