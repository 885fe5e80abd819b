"""Webhook CRUD, the `ping` test and the deliveries log, through the api on a real database."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from integration.integrations.receivers import Receiver
from integration.integrations.support import Project, User
from sqlmodel import select

from bugnet_common.db import Database
from integrations.models import Webhook
from integrations.settings import IntegrationsSettings

MakeUser = Callable[..., User]
MakeProject = Callable[..., Project]


def hooks_path(p: Project) -> str:
    return f"/api/projects/{p.slug}/webhooks"


def create(client: FlaskClient, owner: User, p: Project, **body: Any) -> dict[str, Any]:
    body.setdefault("events", ["bug_created"])
    resp = client.post(hooks_path(p), json=body, headers=owner.headers)
    assert resp.status_code == 201, resp.json
    return resp.json["data"]


def test_created_webhook_shows_its_generated_secret_once(
        client: FlaskClient, user: MakeUser, project: MakeProject) -> None:
    owner = user("Owner")
    p = project(owner)
    hook = create(client, owner, p, url="https://hooks.example.com/bugnet",
                  events=["bug_created", "comment_added"])
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > 30
    assert hook["events"] == ["bug_created", "comment_added"] and hook["enabled"] is True
    listed = client.get(hooks_path(p), headers=owner.headers).json
    assert listed["meta"] == {"page": 1, "limit": 20, "total": 1, "pages": 1}
    assert "secret" not in listed["data"][0]
    got = client.get(f"{hooks_path(p)}/{hook['id']}", headers=owner.headers).json["data"]
    assert "secret" not in got and got["url"] == "https://hooks.example.com/bugnet"


def test_given_secret_is_kept_and_stored_encrypted(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        integrations_db: Database) -> None:
    owner = user("Owner")
    p = project(owner)
    hook = create(client, owner, p, url="https://hooks.example.com/x", secret="my-own-secret")
    assert hook["secret"] == "my-own-secret"
    with integrations_db.session() as session:
        row = session.exec(select(Webhook)).one()
    assert "my-own-secret" not in row.secret_encrypted


def test_update_and_delete_webhook(client: FlaskClient, user: MakeUser,
                                   project: MakeProject) -> None:
    owner = user("Owner")
    p = project(owner)
    hook = create(client, owner, p, url="https://hooks.example.com/x")
    resp = client.patch(f"{hooks_path(p)}/{hook['id']}", headers=owner.headers,
                        json={"events": ["bug_resolved", "bug_updated"], "enabled": False})
    assert resp.status_code == 200, resp.json
    assert resp.json["data"]["events"] == ["bug_updated", "bug_resolved"]
    assert resp.json["data"]["enabled"] is False and "secret" not in resp.json["data"]
    assert client.delete(f"{hooks_path(p)}/{hook['id']}", headers=owner.headers).status_code == 200
    assert client.get(f"{hooks_path(p)}/{hook['id']}", headers=owner.headers).status_code == 404
    assert client.get(hooks_path(p), headers=owner.headers).json["meta"]["total"] == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "not a url", "events": ["bug_created"]}, "url"),
    ({"url": "ftp://hooks.example.com/x", "events": ["bug_created"]}, "url"),
    ({"url": "https://hooks.example.com/x", "events": ["bug_exploded"]}, "events"),
    ({"url": "https://hooks.example.com/x", "events": []}, "events"),
    ({"url": "https://hooks.example.com/x", "events": "bug_created"}, "events"),
    ({"url": "https://hooks.example.com/x", "events": ["ping"]}, "events"),
    ({"events": ["bug_created"]}, "url"),
    ({"url": 42, "events": ["bug_created"]}, "url"),
    ({"url": "https://hooks.example.com/x", "events": ["bug_created"], "secret": "short"},
     "secret"),
    ({"url": "https://user:pw@hooks.example.com/x", "events": ["bug_created"]}, "url"),
])
def test_bad_input_is_400_naming_the_field(client: FlaskClient, user: MakeUser,
                                           project: MakeProject, body: dict[str, Any],
                                           field: str) -> None:
    owner = user("Owner")
    p = project(owner)
    resp = client.post(hooks_path(p), json=body, headers=owner.headers)
    assert resp.status_code == 400, resp.json
    assert resp.json["ok"] is False and field in resp.json["details"]


@pytest.mark.parametrize("url", [
    "http://localhost:9/hook",           # a name resolving to 127.0.0.1
    "http://127.0.0.1:9/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook",
    "http://[fd00:ec2::254]/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://100.64.0.1/hook",
])
def test_private_targets_are_refused_without_an_allowlist(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        strict_targets: IntegrationsSettings, url: str) -> None:
    owner = user("Owner")
    p = project(owner)
    resp = client.post(hooks_path(p), json={"url": url, "events": ["bug_created"]},
                       headers=owner.headers)
    assert resp.status_code == 400, resp.json
    assert "not allowed" in resp.json["details"]["url"]


def test_http_is_refused_when_not_allowed(client: FlaskClient, user: MakeUser,
                                          project: MakeProject,
                                          integrations_settings: IntegrationsSettings) -> None:
    owner = user("Owner")
    p = project(owner)
    integrations_settings.allow_http = False
    try:
        resp = client.post(hooks_path(p), json={"url": "http://hooks.example.com/x",
                                                "events": ["bug_created"]}, headers=owner.headers)
    finally:
        integrations_settings.allow_http = True
    assert resp.status_code == 400 and resp.json["details"]["url"] == "must use https"


def test_only_members_with_integrations_manage(client: FlaskClient, user: MakeUser,
                                               project: MakeProject,
                                               member: Callable[..., None]) -> None:
    owner, dev, stranger = user("Owner"), user("Dev"), user("Stranger")
    p = project(owner)
    member(p, dev, "member")
    hook = create(client, owner, p, url="https://hooks.example.com/x")
    body = {"url": "https://hooks.example.com/y", "events": ["bug_created"]}
    assert client.post(hooks_path(p), json=body, headers=dev.headers).status_code == 403
    assert client.get(hooks_path(p), headers=dev.headers).status_code == 403
    assert client.get(hooks_path(p), headers=stranger.headers).status_code == 404
    assert client.delete(f"{hooks_path(p)}/{hook['id']}",
                         headers=stranger.headers).status_code == 404
    assert client.get(hooks_path(p)).status_code == 401
    admin_like = user("Granted")
    member(p, admin_like, "member", permissions=["bugs.view", "integrations.manage"])
    assert client.get(hooks_path(p), headers=admin_like.headers).status_code == 200


def test_another_projects_webhook_is_not_found(client: FlaskClient, user: MakeUser,
                                               project: MakeProject) -> None:
    owner = user("Owner")
    p1, p2 = project(owner), project(owner, name="Other")
    hook = create(client, owner, p1, url="https://hooks.example.com/x")
    for method in ("get", "patch", "delete"):
        resp = getattr(client, method)(f"{hooks_path(p2)}/{hook['id']}", headers=owner.headers,
                                       json={})
        assert resp.status_code == 404
    assert client.get(f"{hooks_path(p1)}/not-a-uuid", headers=owner.headers).status_code == 404


def test_ping_is_sent_now_signed_and_logged(client: FlaskClient, user: MakeUser,
                                            project: MakeProject,
                                            receiver: Callable[..., Receiver]) -> None:
    owner = user("Owner")
    p = project(owner)
    r = receiver()
    hook = create(client, owner, p, url=r.url + "/hooks?x=1")
    resp = client.post(f"{hooks_path(p)}/{hook['id']}/test", headers=owner.headers)
    assert resp.status_code == 200, resp.json
    delivery = resp.json["data"]
    assert delivery["event"] == "ping" and delivery["status"] == "delivered"
    assert delivery["attempts"] == 1 and delivery["response_code"] == 200
    assert delivery["duration_ms"] >= 0 and delivery["error"] is None
    (got,) = r.wait_for(1)
    assert got.path == "/hooks?x=1"
    expected = "sha256=" + hmac.new(hook["secret"].encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-bugnet-signature"] == expected
    assert got.headers["x-bugnet-event"] == "ping"
    assert got.headers["x-bugnet-delivery"] == delivery["id"]
    body = json.loads(got.body)
    assert body["event"] == "ping" and body["project"] == p.slug
    assert body["delivery_id"] == delivery["id"] and body["timestamp"].endswith("Z")
    log = client.get(f"{hooks_path(p)}/{hook['id']}/deliveries", headers=owner.headers).json
    assert log["meta"]["total"] == 1
    assert set(log["data"][0]) >= {"id", "event", "status", "attempts", "response_code",
                                   "duration_ms", "error", "created_at", "next_attempt_at"}
    detail = client.get(f"{hooks_path(p)}/{hook['id']}/deliveries/{delivery['id']}",
                        headers=owner.headers).json["data"]
    assert [a["outcome"] for a in detail["attempts_log"]] == ["delivered"]


def test_failed_ping_reports_the_receivers_answer(client: FlaskClient, user: MakeUser,
                                                  project: MakeProject,
                                                  receiver: Callable[..., Receiver]) -> None:
    owner = user("Owner")
    p = project(owner)
    r = receiver(statuses=[500])
    hook = create(client, owner, p, url=r.url)
    resp = client.post(f"{hooks_path(p)}/{hook['id']}/test", headers=owner.headers,
                       content_type="application/json")
    delivery = resp.json["data"]
    assert delivery["status"] == "failed" and delivery["response_code"] == 500
    assert delivery["error"] == "HTTP 500"
