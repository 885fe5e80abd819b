"""The Discord integration: configuration, the test message, and events posted as embeds by the
worker to a local server that stands in for Discord (the configured `discord_base_url`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from integration.integrations.receivers import Receiver
from integration.integrations.support import Project, User
from sqlmodel import select

from bugnet_common.bus.worker import Worker
from bugnet_common.db import Database
from integrations.dispatch import enqueue
from integrations.models import Delivery, DiscordIntegration
from integrations.settings import IntegrationsSettings

MakeUser = Callable[..., User]
MakeProject = Callable[..., Project]
REAL = "https://discord.com/api/webhooks/112233445566778899/AbCdEf-Token_123456"


def path(p: Project) -> str:
    return f"/api/projects/{p.slug}/integrations/discord"


@pytest.fixture()
def fake_discord(receiver: Callable[..., Receiver],
                 integrations_settings: IntegrationsSettings) -> Iterator[Receiver]:
    """A stand-in Discord answering 204, set as the app's `discord_base_url`."""
    r = receiver(statuses=[204])
    saved = integrations_settings.discord_base_url
    integrations_settings.discord_base_url = r.url
    try:
        yield r
    finally:
        integrations_settings.discord_base_url = saved


def test_configure_shows_the_url_masked(client: FlaskClient, user: MakeUser,
                                        project: MakeProject, integrations_db: Database) -> None:
    owner = user("Owner")
    p = project(owner)
    resp = client.post(path(p), json={"webhook_url": REAL}, headers=owner.headers)
    assert resp.status_code == 201, resp.json
    data = resp.json["data"]
    assert data["webhook_url"] == "https://discord.com/api/webhooks/112233445566778899/…3456"
    assert data["events"] == ["bug_created", "bug_resolved", "regression_detected",
                              "alert_triggered"]
    assert data["enabled"] is True
    assert client.get(path(p), headers=owner.headers).json["data"] == data
    with integrations_db.session() as session:
        stored = session.exec(select(DiscordIntegration)).one()
    assert "AbCdEf" not in stored.webhook_url_encrypted
    again = client.post(path(p), json={"webhook_url": REAL.replace("discord.com",
                                                                   "discordapp.com"),
                                       "events": ["comment_added"]}, headers=owner.headers)
    assert again.status_code == 200 and again.json["data"]["events"] == ["comment_added"]
    patched = client.patch(path(p), json={"enabled": False, "events": ["bug_updated"]},
                           headers=owner.headers)
    assert patched.status_code == 200
    assert patched.json["data"]["enabled"] is False
    assert client.delete(path(p), headers=owner.headers).status_code == 200
    assert client.get(path(p), headers=owner.headers).status_code == 404
    assert client.patch(path(p), json={"enabled": True}, headers=owner.headers).status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"webhook_url": "https://example.com/api/webhooks/1/abc"}, "webhook_url"),
    ({"webhook_url": "http://discord.com/api/webhooks/1/abc"}, "webhook_url"),
    ({"webhook_url": "https://discord.com/api/channels/1/messages"}, "webhook_url"),
    ({"webhook_url": "https://discord.com.evil.example/api/webhooks/1/abc"}, "webhook_url"),
    ({"webhook_url": "https://evil.example/?u=https://discord.com/api/webhooks/1/a"},
     "webhook_url"),
    ({"webhook_url": "not a url"}, "webhook_url"),
    ({"webhook_url": 12}, "webhook_url"),
    ({}, "webhook_url"),
    ({"webhook_url": REAL, "events": ["everything"]}, "events"),
    ({"webhook_url": REAL, "events": []}, "events"),
    ({"webhook_url": REAL, "enabled": "yes"}, "enabled"),
])
def test_bad_discord_input_is_400(client: FlaskClient, user: MakeUser, project: MakeProject,
                                  body: dict[str, Any], field: str) -> None:
    owner = user("Owner")
    p = project(owner)
    resp = client.post(path(p), json=body, headers=owner.headers)
    assert resp.status_code == 400, resp.json
    assert field in resp.json["details"]


def test_discord_needs_integrations_manage(client: FlaskClient, user: MakeUser,
                                           project: MakeProject,
                                           member: Callable[..., None]) -> None:
    owner, dev, stranger = user("Owner"), user("Dev"), user("Stranger")
    p = project(owner)
    member(p, dev)
    assert client.post(path(p), json={"webhook_url": REAL}, headers=dev.headers).status_code == 403
    assert client.get(path(p), headers=stranger.headers).status_code == 404
    assert client.post(path(p) + "/test", headers=owner.headers).status_code == 404


def test_test_message_is_posted_now(client: FlaskClient, user: MakeUser, project: MakeProject,
                                    fake_discord: Receiver) -> None:
    owner = user("Owner")
    p = project(owner, name="Space Game")
    url = f"{fake_discord.url}/api/webhooks/42/tok-en"
    assert client.post(path(p), json={"webhook_url": url}, headers=owner.headers).status_code == 201
    resp = client.post(path(p) + "/test", headers=owner.headers)
    assert resp.status_code == 200, resp.json
    assert resp.json["data"]["status"] == "delivered"
    assert resp.json["data"]["response_code"] == 204
    (got,) = fake_discord.wait_for(1)
    assert got.path == "/api/webhooks/42/tok-en"
    embed = got.json()["embeds"][0]
    assert embed["title"].startswith("Test message from Bugnet")
    assert embed["footer"]["text"] == "Bugnet · Space Game"
    assert got.json()["allowed_mentions"] == {"parse": []}


def test_events_become_embeds_and_429_retry_after_is_honoured(
        client: FlaskClient, user: MakeUser, project: MakeProject, fake_discord: Receiver,
        worker_factory: Callable[..., Worker], integrations_db: Database) -> None:
    owner = user("Owner")
    p = project(owner)
    fake_discord.statuses = [429, 204]
    fake_discord.body = {"message": "You are being rate limited.", "retry_after": 0.8,
                         "global": False}
    url = f"{fake_discord.url}/api/webhooks/42/tok-en"
    client.post(path(p), json={"webhook_url": url, "events": ["bug_created"]},
                headers=owner.headers)
    worker_factory(discord_base_url=fake_discord.url)
    with integrations_db.begin() as session:
        enqueue(session, project_id=p.id, event="bug_created", data={
            "id": "b1", "number": 12, "title": "Crash in the menu " + "x" * 400,
            "category": "crash", "priority": "critical", "status": "open",
            "url": "https://bugnet.test/api/projects/x/bugs/b1"})
    first, second = fake_discord.wait_for(2)
    assert second.at - first.at >= 0.75
    embed = second.json()["embeds"][0]
    assert embed["title"].startswith("New bug: #12 Crash in the menu")
    assert len(embed["title"]) == 256 and embed["title"].endswith("…")
    assert {f["name"]: f["value"] for f in embed["fields"]} == {
        "Status": "open", "Priority": "critical", "Category": "crash"}
    assert embed["url"] == "https://bugnet.test/api/projects/x/bugs/b1"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with integrations_db.session() as session:
            d = session.exec(select(Delivery)).one()
        if d.status == "delivered":
            break
        time.sleep(0.05)
    assert d.status == "delivered" and d.attempts == 2 and d.channel == "discord"


def test_disabled_discord_gets_nothing(client: FlaskClient, user: MakeUser,
                                       project: MakeProject, integrations_db: Database) -> None:
    owner = user("Owner")
    p = project(owner)
    client.post(path(p), json={"webhook_url": REAL, "enabled": False}, headers=owner.headers)
    with integrations_db.begin() as session:
        enqueue(session, project_id=p.id, event="bug_created", data={"id": "b"})
    with integrations_db.session() as session:
        assert session.exec(select(Delivery)).all() == []
