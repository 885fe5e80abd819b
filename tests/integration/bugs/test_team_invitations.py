"""Invitations: create, list, revoke, accept (matching email, single use, 7-day expiry), email."""

from __future__ import annotations

import email
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from bugnet_common.bus import subjects
from bugnet_common.bus.events import utcnow
from bugs.access import ROLE_DEFAULTS
from bugs.models import BUS, Invitation
from bugs.settings import BugsSettings
from bugs.team.service import hash_token


def outbox_subjects(db: Any) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(sa.select(BUS.outbox.c.subject).order_by(BUS.outbox.c.seq)).scalars())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        self.arrived.set()
        return "250 Message accepted for delivery"


@pytest.fixture()
def smtp(bugs_settings: BugsSettings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """A real SMTP server on a free local port, and the service configured to use it."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setattr(bugs_settings, "smtp_host", "127.0.0.1")
    monkeypatch.setattr(bugs_settings, "smtp_port", port)
    monkeypatch.setattr(bugs_settings, "public_base_url", "https://bugs.example.test/")
    try:
        yield inbox
    finally:
        controller.stop()


def invite(client: Any, who: Any, slug: str, address: str, role: str = "member") -> Any:
    return client.post(f"/api/projects/{slug}/team/invitations", json={"email": address, "role": role},
                       headers=who.headers)


def accept(client: Any, who: Any, token: str, **kwargs: Any) -> Any:
    return client.post(f"/api/invitations/{token}/accept", headers=who.headers, **kwargs)


def test_invitation_shows_its_token_once_and_stores_only_the_hash(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    slug = project(owner)["slug"]
    resp = invite(client, owner, slug, "New.Player@Example.com", "admin")
    assert resp.status_code == 201 and resp.json["ok"] is True
    data = resp.json["data"]
    assert data["email"] == "new.player@example.com" and data["role"] == "admin"
    assert data["emailed"] is False and data["url"].endswith(f"/invitations/{data['token']}")
    assert data["invited_by"]["id"] == owner.id and data["invited_by"]["display_name"] == "Owner"
    assert data["expires_at"] > data["created_at"]
    with bugs_db.session() as session:
        stored = session.get(Invitation, data["id"])
        assert stored is not None and stored.token_hash == hash_token(data["token"])
        assert stored.expires_at - stored.created_at == timedelta(days=7)
    listed = client.get(f"/api/projects/{slug}/team/invitations", headers=owner.headers)
    assert listed.status_code == 200 and listed.json["meta"]["total"] == 1
    assert listed.json["data"][0]["id"] == data["id"] and "token" not in listed.json["data"][0]


def test_invitations_are_refused_for_members_pending_invitees_and_bad_input(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner, member = user("Owner"), user("Member")
    slug = project(owner)["slug"]
    token = invite(client, owner, slug, member.email).json["data"]["token"]
    assert accept(client, member, token).status_code == 200
    assert invite(client, owner, slug, member.email.upper()).status_code == 409
    assert invite(client, owner, slug, owner.email).status_code == 409
    assert invite(client, owner, slug, "someone@example.com").status_code == 201
    again = invite(client, owner, slug, "Someone@example.com")
    assert again.status_code == 409 and "pending" in again.json["error"]
    for body, field in (({"email": "not-an-email", "role": "member"}, "email"),
                        ({"email": "a@example.com", "role": "owner"}, "role"),
                        ({"email": "a@example.com", "role": "boss"}, "role"),
                        ({"email": "a" * 250 + "@example.com"}, "email"),
                        ({"role": "member"}, "email")):
        resp = client.post(f"/api/projects/{slug}/team/invitations", json=body, headers=owner.headers)
        assert resp.status_code == 400 and field in resp.json["details"], body
    assert invite(client, member, slug, "b@example.com").status_code == 403
    assert invite(client, user("Stranger"), slug, "b@example.com").status_code == 404


def test_accepting_joins_with_the_invited_role_once(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, invitee = user("Owner"), user("Invitee", email="invitee@example.com")
    created = project(owner)
    slug = created["slug"]
    token = invite(client, owner, slug, "INVITEE@example.com", "admin").json["data"]["token"]
    # An empty body with a JSON Content-Type is fine, like no body at all.
    resp = accept(client, invitee, token, data="", content_type="application/json")
    assert resp.status_code == 200, resp.json
    assert resp.json["data"]["role"] == "admin"
    assert resp.json["data"]["project"]["slug"] == slug and resp.json["data"]["project"]["role"] == "admin"
    assert client.get(f"/api/projects/{slug}", headers=invitee.headers).json["data"]["role"] == "admin"
    assert outbox_subjects(bugs_db)[-1] == subjects.MEMBER_ADDED
    assert accept(client, invitee, token).status_code == 409  # already a member
    left = client.delete(f"/api/projects/{slug}/team/{invitee.id}", headers=invitee.headers)
    assert left.status_code == 200
    used = accept(client, invitee, token)
    assert used.status_code == 410 and "used" in used.json["error"]
    pending = client.get(f"/api/projects/{slug}/team/invitations", headers=owner.headers).json
    assert pending["data"] == [] and pending["meta"]["total"] == 0


def test_accepting_needs_the_invited_email_a_live_token_and_a_session(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, invitee, other = user("Owner"), user("Invitee"), user("Other")
    slug = project(owner)["slug"]
    token = invite(client, owner, slug, invitee.email).json["data"]["token"]
    wrong = accept(client, other, token)
    assert wrong.status_code == 403 and "email" in wrong.json["error"]
    assert client.post(f"/api/invitations/{token}/accept").status_code == 401
    assert accept(client, invitee, "no-such-token").status_code == 404
    with bugs_db.begin() as session:
        session.execute(sa.update(Invitation).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = accept(client, invitee, token)
    assert expired.status_code == 410 and "expired" in expired.json["error"]
    assert client.get(f"/api/projects/{slug}", headers=invitee.headers).status_code == 404
    # An expired invitation is not pending: the address may be invited again.
    assert client.get(f"/api/projects/{slug}/team/invitations", headers=owner.headers).json["data"] == []
    assert invite(client, owner, slug, invitee.email).status_code == 201


def test_revoking_kills_the_token_and_only_pending_invitations_of_this_project(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner, invitee, joined = user("Owner"), user("Invitee"), user("Joined")
    slug = project(owner)["slug"]
    other_slug = project(owner, name="Other Game")["slug"]
    inv = invite(client, owner, slug, invitee.email).json["data"]
    used = invite(client, owner, slug, joined.email).json["data"]
    assert accept(client, joined, used["token"]).status_code == 200
    assert client.delete(f"/api/projects/{other_slug}/team/invitations/{inv['id']}",
                         headers=owner.headers).status_code == 404
    assert client.delete(f"/api/projects/{slug}/team/invitations/not-a-uuid",
                         headers=owner.headers).status_code == 404
    assert client.delete(f"/api/projects/{slug}/team/invitations/{inv['id']}",
                         headers=joined.headers).status_code == 403
    assert client.delete(f"/api/projects/{slug}/team/invitations/{used['id']}",
                         headers=owner.headers).status_code == 409
    revoked = client.delete(f"/api/projects/{slug}/team/invitations/{inv['id']}", headers=owner.headers)
    assert revoked.status_code == 200 and revoked.json["data"]["revoked_at"] is not None
    assert client.delete(f"/api/projects/{slug}/team/invitations/{inv['id']}",
                         headers=owner.headers).status_code == 404
    gone = accept(client, invitee, inv["token"])
    assert gone.status_code == 410 and "revoked" in gone.json["error"]
    assert client.get(f"/api/projects/{slug}/team/invitations", headers=owner.headers).json["data"] == []


def test_pending_invitations_are_listed_newest_first_in_pages(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner, member = user("Owner"), user("Member")
    slug = project(owner)["slug"]
    accept(client, member, invite(client, owner, slug, member.email).json["data"]["token"])
    ids = [invite(client, owner, slug, f"p{i}@example.com").json["data"]["id"] for i in range(3)]
    first = client.get(f"/api/projects/{slug}/team/invitations?limit=2", headers=owner.headers).json
    assert first["meta"] == {"page": 1, "limit": 2, "total": 3, "pages": 2}
    assert [i["id"] for i in first["data"]] == [ids[2], ids[1]]
    assert client.get(f"/api/projects/{slug}/team/invitations", headers=member.headers).status_code == 403


def test_invitation_is_emailed_with_its_accept_link(client, user, project, smtp) -> None:  # type: ignore[no-untyped-def]
    owner = user("Olivia Owner")
    slug = project(owner, name="Space Game")["slug"]
    resp = invite(client, owner, slug, "friend@example.com", "admin")
    assert resp.status_code == 201 and resp.json["data"]["emailed"] is True
    token = resp.json["data"]["token"]
    assert smtp.arrived.wait(5)
    ((rcpt, msg),) = smtp.messages
    assert rcpt == ["friend@example.com"] and msg["To"] == "friend@example.com"
    assert "Space Game" in msg["Subject"]
    body = msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert f"https://bugs.example.test/invitations/{token}" in body
    assert "Olivia Owner" in body and "admin" in body


def test_a_mail_failure_keeps_the_invitation(client, user, project, bugs_settings, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(bugs_settings, "smtp_host", "127.0.0.1")
    monkeypatch.setattr(bugs_settings, "smtp_port", free_port())  # nobody listens there
    owner, invitee = user("Owner"), user("Invitee")
    slug = project(owner)["slug"]
    resp = invite(client, owner, slug, invitee.email)
    assert resp.status_code == 201 and resp.json["data"]["emailed"] is False
    assert any("invitation email not sent" in r.getMessage() for r in caplog.records)
    assert accept(client, invitee, resp.json["data"]["token"]).status_code == 200
    perms = client.get(f"/api/projects/{slug}/team/{invitee.id}/permissions", headers=owner.headers)
    assert set(perms.json["data"]["permissions"]) == ROLE_DEFAULTS["member"]
