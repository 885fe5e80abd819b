"""The auth api against a real PostgreSQL and NATS (spec §4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from auth.models import BUS, AuthSession, User
from bugnet_common.bus import subjects
from bugnet_common.db import Database

PASSWORD = "correct horse battery"


def signup(client, email: str = "Ada@Example.com", password: str = PASSWORD,  # type: ignore[no-untyped-def]
           name: str = "Ada") -> dict[str, Any]:
    resp = client.post("/api/auth/signup", json={"email": email, "password": password,
                                                 "display_name": name})
    assert resp.status_code == 201, resp.json
    return resp.json["data"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def outbox_subjects(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(sa.select(BUS.outbox.c.subject)
                                 .order_by(BUS.outbox.c.seq)).scalars())


def count(db: Database, model: Any) -> int:
    with db.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def test_signup_creates_user_session_and_event(client, auth_db) -> None:  # type: ignore[no-untyped-def]
    data = signup(client)
    user = data["user"]
    assert user["email"] == "ada@example.com"
    assert user["display_name"] == "Ada"
    assert user["onboarding"] == {"completed": False, "role": None, "team_size": None,
                                  "platforms": []}
    assert user["created_at"].endswith("Z")
    assert set(user) == {"id", "email", "display_name", "avatar", "onboarding", "created_at"}
    assert count(auth_db, User) == 1 and count(auth_db, AuthSession) == 1
    assert outbox_subjects(auth_db) == [subjects.USER_REGISTERED]
    me = client.get("/api/auth/me", headers=bearer(data["token"]))
    assert me.status_code == 200 and me.json["data"]["id"] == user["id"]


def test_token_is_es256_with_kid_and_verifies_against_jwks(client) -> None:  # type: ignore[no-untyped-def]
    token = signup(client)["token"]
    jwks = client.get("/api/auth/jwks.json")
    assert jwks.status_code == 200 and "ok" not in jwks.json
    keys = jwks.json["keys"]
    assert keys and all("d" not in k for k in keys)  # never a private part
    decoded = jwt.decode(token, KeySet.import_key_set(jwks.json), algorithms=["ES256"])
    assert decoded.header["kid"] in {k["kid"] for k in keys}
    claims = decoded.claims
    assert {"sub", "email", "sid", "iat", "exp", "iss", "aud"} <= claims.keys()
    assert claims["exp"] - claims["iat"] == 7 * 24 * 3600


def test_email_is_unique_case_insensitively(client, auth_db) -> None:  # type: ignore[no-untyped-def]
    signup(client)
    resp = client.post("/api/auth/signup", json={"email": "ADA@example.COM", "password": PASSWORD,
                                                 "display_name": "Other"})
    assert resp.status_code == 409 and resp.json["code"] == "conflict"
    assert count(auth_db, User) == 1


@pytest.mark.parametrize("body, field", [
    ({"email": "not-an-email", "password": PASSWORD, "display_name": "A"}, "email"),
    ({"email": "a" * 250 + "@x.io", "password": PASSWORD, "display_name": "A"}, "email"),
    ({"email": "a@x.io", "password": "short", "display_name": "A"}, "password"),
    ({"email": "a@x.io", "password": "password123", "display_name": "A"}, "password"),
    ({"email": "a@x.io", "password": "aaaaaaaaaaaa", "display_name": "A"}, "password"),
    ({"email": "a@x.io", "password": PASSWORD, "display_name": "x" * 101}, "display_name"),
    ({"email": "a@x.io", "password": PASSWORD, "display_name": "   "}, "display_name"),
    ({"email": "a@x.io", "password": 12345678, "display_name": "A"}, "password"),
    ({"email": ["a@x.io"], "password": PASSWORD, "display_name": "A"}, "email"),
    ({"password": PASSWORD, "display_name": "A"}, "email"),
])
def test_bad_signup_is_400_naming_the_field_and_writes_nothing(client, auth_db, body, field) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/api/auth/signup", json=body)
    assert resp.status_code == 400
    assert resp.json["ok"] is False and field in resp.json["details"]
    assert f"'{field}'" in resp.json["error"]
    assert count(auth_db, User) == 0 and outbox_subjects(auth_db) == []


def test_signup_ignores_unknown_fields(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/api/auth/signup", json={"email": "u@x.io", "password": PASSWORD,
                                                 "display_name": "U", "is_admin": True})
    assert resp.status_code == 201


def test_malformed_and_non_json_bodies(client) -> None:  # type: ignore[no-untyped-def]
    bad = client.post("/api/auth/login", data="{", content_type="application/json")
    assert bad.status_code == 400 and bad.json["error"] == "Malformed JSON body"
    form = client.post("/api/auth/login", data="email=a", content_type="text/plain")
    assert form.status_code == 415


def test_login_failures_share_one_message(client) -> None:  # type: ignore[no-untyped-def]
    signup(client)
    wrong = client.post("/api/auth/login", json={"email": "ada@example.com", "password": "nope-nope"})
    unknown = client.post("/api/auth/login", json={"email": "who@example.com", "password": PASSWORD})
    malformed = client.post("/api/auth/login", json={"email": "who", "password": PASSWORD})
    for resp in (wrong, unknown, malformed):
        assert resp.status_code == 401
        assert resp.json == {"ok": False, "error": "Invalid email or password",
                             "code": "unauthorized"}


def test_login_with_any_email_case_starts_a_new_session(client, auth_db) -> None:  # type: ignore[no-untyped-def]
    first = signup(client)
    resp = client.post("/api/auth/login", json={"email": "ADA@example.com", "password": PASSWORD})
    assert resp.status_code == 200
    assert resp.json["data"]["user"]["id"] == first["user"]["id"]
    assert resp.json["data"]["token"] != first["token"]
    assert count(auth_db, AuthSession) == 2


def test_logout_revokes_only_this_session(client, auth_db) -> None:  # type: ignore[no-untyped-def]
    token = signup(client)["token"]
    other = client.post("/api/auth/login", json={"email": "ada@example.com",
                                                 "password": PASSWORD}).json["data"]["token"]
    assert client.post("/api/auth/logout", headers=bearer(token)).status_code == 200
    refused = client.get("/api/auth/me", headers=bearer(token))
    assert refused.status_code == 401 and refused.json["ok"] is False
    assert client.get("/api/auth/me", headers=bearer(other)).status_code == 200
    assert outbox_subjects(auth_db)[-1] == subjects.SESSION_REVOKED


def test_missing_and_malformed_bearer_are_401(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/api/auth/me").status_code == 401
    assert client.get("/api/auth/me", headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.get("/api/auth/me", headers=bearer("a.b.c")).status_code == 401


def test_token_signed_by_another_key_with_the_right_kid_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    token = signup(client)["token"]
    real = jwt.decode(token, KeySet.import_key_set(client.get("/api/auth/jwks.json").json),
                      algorithms=["ES256"])
    forger = ECKey.generate_key("P-256", parameters={"kid": real.header["kid"]}, private=True)
    forged = jwt.encode(real.header, real.claims, forger, algorithms=["ES256"])
    assert client.get("/api/auth/me", headers=bearer(forged)).status_code == 401


def test_update_me_with_patch_and_put(client, auth_db) -> None:  # type: ignore[no-untyped-def]
    token = signup(client)["token"]
    resp = client.patch("/api/auth/me", headers=bearer(token),
                        json={"display_name": "Ada L.", "avatar": "https://cdn.example.com/a.png"})
    assert resp.status_code == 200
    assert resp.json["data"]["display_name"] == "Ada L."
    resp = client.put("/api/auth/me", headers=bearer(token), json={"email": "Ada2@Example.com"})
    assert resp.json["data"]["email"] == "ada2@example.com"
    assert outbox_subjects(auth_db).count(subjects.USER_UPDATED) == 2
    with auth_db.engine.connect() as conn:
        payloads = [json.loads(p) for p in conn.execute(
            sa.select(BUS.outbox.c.payload).where(BUS.outbox.c.subject == subjects.USER_UPDATED)
            .order_by(BUS.outbox.c.seq)).scalars()]
    assert payloads[1]["data"]["changes"] == ["email"]
    assert payloads[1]["data"]["email"] == "ada2@example.com"


def test_email_change_to_a_taken_email_is_409_and_changes_nothing(client) -> None:  # type: ignore[no-untyped-def]
    signup(client, email="taken@example.com", name="T")
    token = signup(client)["token"]
    resp = client.patch("/api/auth/me", headers=bearer(token),
                        json={"email": "TAKEN@example.com", "display_name": "New"})
    assert resp.status_code == 409
    me = client.get("/api/auth/me", headers=bearer(token)).json["data"]
    assert me["email"] == "ada@example.com" and me["display_name"] == "Ada"


def test_update_me_rejects_bad_values(client) -> None:  # type: ignore[no-untyped-def]
    token = signup(client)["token"]
    for body in ({"display_name": ""}, {"display_name": None}, {"email": "nope"},
                 {"avatar": "javascript:alert(1)"}, {"display_name": 5}):
        resp = client.patch("/api/auth/me", headers=bearer(token), json=body)
        assert resp.status_code == 400, body


def test_password_change_revokes_other_sessions(client) -> None:  # type: ignore[no-untyped-def]
    token = signup(client)["token"]
    other = client.post("/api/auth/login", json={"email": "ada@example.com",
                                                 "password": PASSWORD}).json["data"]["token"]
    wrong = client.put("/api/auth/password", headers=bearer(token),
                       json={"current_password": "wrong-one", "new_password": "new secret pass"})
    assert wrong.status_code == 403
    weak = client.put("/api/auth/password", headers=bearer(token),
                      json={"current_password": PASSWORD, "new_password": "short"})
    assert weak.status_code == 400 and "new_password" in weak.json["details"]
    ok = client.put("/api/auth/password", headers=bearer(token),
                    json={"current_password": PASSWORD, "new_password": "new secret pass"})
    assert ok.status_code == 200
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    assert client.get("/api/auth/me", headers=bearer(other)).status_code == 401
    assert client.post("/api/auth/login", json={"email": "ada@example.com",
                                                "password": PASSWORD}).status_code == 401
    assert client.post("/api/auth/login", json={"email": "ada@example.com",
                                                "password": "new secret pass"}).status_code == 200


def test_onboarding_completes(client) -> None:  # type: ignore[no-untyped-def]
    token = signup(client)["token"]
    resp = client.post("/api/auth/onboarding", headers=bearer(token),
                       json={"role": "developer", "team_size": "2-5", "platforms": ["Windows", "Linux"]})
    assert resp.status_code == 200
    assert resp.json["data"]["onboarding"] == {"completed": True, "role": "developer",
                                               "team_size": "2-5", "platforms": ["Windows", "Linux"]}
    bad = client.post("/api/auth/onboarding", headers=bearer(token),
                      json={"role": "dev", "team_size": "3", "platforms": "Windows"})
    assert bad.status_code == 400 and "platforms" in bad.json["details"]


def test_public_config(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/api/config/public")
    assert resp.json == {"ok": True, "data": {"firebase": None, "stripe_publishable_key": None}}


def test_export_gathers_every_service(client, export_responders) -> None:  # type: ignore[no-untyped-def]
    export_responders({
        "bugs": {"memberships": [{"project": "p1", "role": "owner"}],
                 "bugs": [{"id": "b1", "title": "Crash"}], "comments": [{"id": "c1"}]},
        "analytics": {}, "integrations": {"notification_preferences": {}}})
    token = signup(client)["token"]
    resp = client.get("/api/auth/export", headers=bearer(token))
    assert resp.status_code == 200
    doc = resp.json["data"]
    assert doc["profile"]["email"] == "ada@example.com"
    assert doc["memberships"] == [{"project": "p1", "role": "owner"}]
    assert doc["bugs"] == [{"id": "b1", "title": "Crash"}]
    assert doc["comments"] == [{"id": "c1"}]
    assert doc["complete"] is True and doc["missing"] == []
    assert doc["services"]["integrations"]["data"] == {"notification_preferences": {}}


def test_export_names_a_service_that_did_not_answer(client, export_responders) -> None:  # type: ignore[no-untyped-def]
    export_responders({"bugs": {}, "analytics": {}})
    token = signup(client)["token"]
    doc = client.get("/api/auth/export", headers=bearer(token)).json["data"]
    assert doc["complete"] is False and doc["missing"] == ["integrations"]


def test_delete_account_returns_export_and_removes_everything(client, auth_db, export_responders) -> None:  # type: ignore[no-untyped-def]
    export_responders({"bugs": {"bugs": [{"id": "b1"}]}, "analytics": {}, "integrations": {}})
    token = signup(client)["token"]
    wrong = client.delete("/api/auth/me", headers=bearer(token), json={"password": "wrong-one"})
    assert wrong.status_code == 403 and count(auth_db, User) == 1
    resp = client.delete("/api/auth/me", headers=bearer(token), json={"password": PASSWORD})
    assert resp.status_code == 200
    assert resp.json["data"]["bugs"] == [{"id": "b1"}]
    assert resp.json["data"]["profile"]["email"] == "ada@example.com"
    assert count(auth_db, User) == 0 and count(auth_db, AuthSession) == 0
    gone = client.get("/api/auth/me", headers=bearer(token))
    assert gone.status_code == 401
    assert client.post("/api/auth/login", json={"email": "ada@example.com",
                                                "password": PASSWORD}).status_code == 401
    assert outbox_subjects(auth_db)[-2:] == [subjects.SESSION_REVOKED, subjects.USER_DELETED]


def test_delete_is_refused_while_a_service_cannot_export(client, auth_db, export_responders) -> None:  # type: ignore[no-untyped-def]
    export_responders({"bugs": {}, "analytics": {}})
    token = signup(client)["token"]
    resp = client.delete("/api/auth/me", headers=bearer(token), json={"password": PASSWORD})
    assert resp.status_code == 503 and "integrations" in resp.json["error"]
    assert count(auth_db, User) == 1
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200


def test_delete_is_refused_for_the_only_owner_of_a_shared_project(client, auth_db, export_responders) -> None:  # type: ignore[no-untyped-def]
    export_responders({"bugs": {"blocking_projects": [{"slug": "space-game", "name": "Space Game"}]},
                       "analytics": {}, "integrations": {}})
    token = signup(client)["token"]
    resp = client.delete("/api/auth/me", headers=bearer(token), json={"password": PASSWORD})
    assert resp.status_code == 409 and "Space Game" in resp.json["error"]
    assert count(auth_db, User) == 1
