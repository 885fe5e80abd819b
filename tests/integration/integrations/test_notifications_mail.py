"""Notification emails through a real SMTP server (aiosmtpd): what is queued, what the mailer
sends, retries while the server is down, permanent refusals, and the whole path from a bus
event through the worker to the mailbox."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from integration.integrations.alerts_support import (
    Inbox,
    body_of,
    bus_event,
    crash_free_dropped,
    evaluate_event,
    notify_event,
    publish,
    rows,
    smtp_server,
    snapshot,
)
from integration.integrations.support import Project, User

from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects
from bugnet_common.bus.worker import Worker
from bugnet_common.db import Database
from integrations.notifications.mail import Mailer
from integrations.settings import IntegrationsSettings
from servers import NatsInfo, free_port


@pytest.fixture()
def smtp(integrations_settings: IntegrationsSettings) -> Iterator[tuple[Inbox, IntegrationsSettings]]:
    """A real SMTP server and settings pointing at it (fast retries)."""
    with smtp_server() as (inbox, port):
        yield inbox, integrations_settings.model_copy(update={
            "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_from": "Bugnet <bot@bugnet.test>",
            "mail_backoff_base_seconds": 0.2, "mail_max_attempts": 3,
            "mail_poll_seconds": 0.05, "smtp_timeout_seconds": 5.0})


@pytest.fixture()
def team(user: Callable[..., User], project: Callable[..., Project],
         member: Callable[..., None]) -> tuple[Project, User, User]:
    owner, dev = user("Olivia Owner"), user("Dana Dev")
    p = project(owner, name="Space Game")
    member(p, dev, "member")
    return p, owner, dev


def assignment(p: Project, to: User, actor: User, number: int = 12) -> ev.Event:
    bug = snapshot(p, number=number, title="Crash on start", assignee_id=to.id)
    return bus_event(subjects.BUG_UPDATED, ev.BugChanged(
        bug=bug, changes={"assignee": {"from": None, "to": to.id}}, actor_id=actor.id))


def emails(db: Database) -> list[dict[str, Any]]:
    return rows(db, "SELECT * FROM outgoing_emails ORDER BY created_at")


def test_an_assignment_is_emailed_to_the_assignee(
        team: tuple[Project, User, User], smtp: tuple[Inbox, IntegrationsSettings],
        integrations_db: Database) -> None:
    p, owner, dev = team
    inbox, settings = smtp
    notify_event(integrations_db, settings, assignment(p, dev, owner))
    (queued,) = emails(integrations_db)
    assert queued["status"] == "pending" and queued["to_address"] == dev.email
    assert Mailer(settings=settings, db=integrations_db).run_once() == 1
    ((rcpt, msg),) = inbox.wait_for(1)
    assert rcpt == [dev.email] and msg["To"] == dev.email
    assert msg["From"] == "Bugnet <bot@bugnet.test>"
    assert msg["Subject"] == "[Space Game] Bug #12 assigned to you: Crash on start"
    assert msg["X-Bugnet-Event"] == "bug_assigned" and msg["Auto-Submitted"] == "auto-generated"
    text = body_of(msg)
    assert text.startswith("Hi Dana Dev,")
    assert "Olivia Owner assigned you bug #12 “Crash on start” in Space Game." in text
    assert f"https://bugnet.test/api/projects/{p.slug}/bugs/" in text
    (sent,) = emails(integrations_db)
    assert sent["status"] == "sent" and sent["attempts"] == 1 and sent["sent_at"] is not None
    assert Mailer(settings=settings, db=integrations_db).run_once() == 0  # nothing left


def test_no_email_when_preferences_say_no_or_mail_is_not_configured(
        client: FlaskClient, team: tuple[Project, User, User],
        smtp: tuple[Inbox, IntegrationsSettings], integrations_db: Database,
        integrations_settings: IntegrationsSettings) -> None:
    p, owner, dev = team
    _, settings = smtp
    assert integrations_settings.smtp_host is None
    notify_event(integrations_db, integrations_settings, assignment(p, dev, owner, number=1))
    assert emails(integrations_db) == []
    client.put("/api/notifications/preferences", headers=dev.headers,
               json={"projects": {p.slug: {"email": {"bug_assigned": False}}}})
    notify_event(integrations_db, settings, assignment(p, dev, owner, number=2))
    assert emails(integrations_db) == []
    # The in-app notifications were still made.
    assert client.get("/api/notifications", headers=dev.headers).json["meta"]["total"] == 2


def test_a_down_mail_server_is_retried_with_backoff(
        team: tuple[Project, User, User], smtp: tuple[Inbox, IntegrationsSettings],
        integrations_db: Database) -> None:
    p, owner, dev = team
    inbox, settings = smtp
    down = settings.model_copy(update={"smtp_port": free_port()})  # nobody listens there
    notify_event(integrations_db, down, assignment(p, dev, owner))
    assert Mailer(settings=down, db=integrations_db).run_once() == 1
    (waiting,) = emails(integrations_db)
    assert waiting["status"] == "pending" and waiting["attempts"] == 1
    assert "ConnectionRefusedError" in waiting["last_error"]
    assert Mailer(settings=settings, db=integrations_db).run_once() == 0  # backing off
    time.sleep(0.3)
    assert Mailer(settings=settings, db=integrations_db).run_once() == 1  # the server is back
    assert len(inbox.wait_for(1)) == 1
    assert emails(integrations_db)[0]["status"] == "sent"


def test_refused_addresses_fail_for_good_and_the_rest_is_sent(
        team: tuple[Project, User, User], user: Callable[..., User],
        member: Callable[..., None], smtp: tuple[Inbox, IntegrationsSettings],
        integrations_db: Database) -> None:
    p, owner, dev = team
    inbox, settings = smtp
    other = user("Other")
    member(p, other, "member")
    inbox.refuse[dev.email] = "550 5.1.1 No such user"
    notify_event(integrations_db, settings, assignment(p, dev, owner, number=1))
    notify_event(integrations_db, settings, assignment(p, other, owner, number=2))
    assert Mailer(settings=settings, db=integrations_db).run_once() == 2
    by_address = {e["to_address"]: e for e in emails(integrations_db)}
    assert by_address[dev.email]["status"] == "failed"
    assert "550" in by_address[dev.email]["last_error"]
    assert by_address[other.email]["status"] == "sent"
    assert [r for r, _ in inbox.wait_for(1)] == [[other.email]]


def test_temporary_refusals_give_up_after_the_last_attempt(
        team: tuple[Project, User, User], smtp: tuple[Inbox, IntegrationsSettings],
        integrations_db: Database) -> None:
    p, owner, dev = team
    inbox, settings = smtp
    inbox.refuse[dev.email] = "450 4.2.1 Mailbox busy"
    notify_event(integrations_db, settings, assignment(p, dev, owner))
    mailer = Mailer(settings=settings, db=integrations_db)
    deadline = time.monotonic() + 10
    while emails(integrations_db)[0]["status"] == "pending" and time.monotonic() < deadline:
        mailer.run_once()
        time.sleep(0.1)
    (gave_up,) = emails(integrations_db)
    assert gave_up["status"] == "failed" and gave_up["attempts"] == 3
    assert inbox.messages == []


def test_alert_emails_go_to_members_who_may_see_the_signal(
        client: FlaskClient, team: tuple[Project, User, User], user: Callable[..., User],
        member: Callable[..., None], smtp: tuple[Inbox, IntegrationsSettings],
        integrations_db: Database) -> None:
    p, owner, dev = team
    inbox, settings = smtp
    tester = user("Tester")
    member(p, tester, "member", permissions=["bugs.view"])
    resp = client.post(f"/api/projects/{p.slug}/alerts", headers=owner.headers, json={
        "name": "Crash-free under 99", "condition": "crash_free_below", "threshold": 99,
        "channels": ["email"]})
    assert resp.status_code == 201
    evaluate_event(integrations_db, settings, crash_free_dropped(p, rate=96.5))
    assert Mailer(settings=settings, db=integrations_db).run_once() == 2
    got = inbox.wait_for(2)
    assert sorted(r[0] for r, _ in got) == sorted([owner.email, dev.email])  # analytics.view
    msg = inbox.to(dev.email)[0]
    assert msg["Subject"] == "[Space Game] Alert “Crash-free under 99” fired"
    assert "fell to 96.5 %" in body_of(msg)
    # email only: no in-app notification
    assert client.get("/api/notifications", headers=dev.headers).json["meta"]["total"] == 0


def test_a_comment_on_the_bus_reaches_the_mailbox_through_the_worker(
        team: tuple[Project, User, User], smtp: tuple[Inbox, IntegrationsSettings],
        worker_factory: Callable[..., Worker], nats: NatsInfo) -> None:
    p, owner, dev = team
    inbox, settings = smtp
    worker_factory(smtp_host=settings.smtp_host, smtp_port=settings.smtp_port,
                   mail_poll_seconds=0.05)
    bug = snapshot(p, number=4, title="Sound cuts out", reporter_user_id=dev.id)
    publish(nats.url,
            bus_event(subjects.BUG_CREATED, ev.BugChanged(bug=bug, actor_id=dev.id)),
            bus_event(subjects.COMMENT_ADDED, ev.CommentAdded(
                bug=bug, comment_id=str(uuid.uuid4()), body="Also on Linux", internal=False,
                author_id=owner.id)))
    ((rcpt, msg),) = inbox.wait_for(1, timeout=20)
    assert rcpt == [dev.email]
    assert msg["Subject"] == "[Space Game] New comment on bug #4: Sound cuts out"
    assert "Also on Linux" in body_of(msg)
