"""Helpers of the alert and notification tests: bus events as the producers send them, the
handlers applied the way the worker's consumers apply them, and a real SMTP server."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email.message import Message
from typing import Any

import nats
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from integration.integrations.support import Project

from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event, isoformat, payload, utcnow
from bugnet_common.db import Database
from integrations.alerts import evaluate
from integrations.models import BUS
from integrations.notifications import handlers as notification_handlers
from integrations.settings import IntegrationsSettings
from servers import free_port

# Recent enough to be evaluated (handlers skip events older than a day), fixed for the run.
T0 = utcnow().replace(microsecond=0) - timedelta(hours=2)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def snapshot(project: Project, *, number: int = 1, title: str = "Player falls through floor",
             priority: str = "medium", category: str = "gameplay", status: str = "open",
             source: str = "dashboard", fingerprint: str | None = None,
             assignee_id: str | None = None, reporter_user_id: str | None = None,
             bug_id: str | None = None) -> ev.BugSnapshot:
    bug_id = bug_id or str(uuid.uuid4())
    return ev.BugSnapshot(
        id=bug_id, project_id=project.id, project_slug=project.slug, number=number, title=title,
        category=category, priority=priority, status=status, source=source, is_public=False,
        platform="Windows", game_version="1.0.0", fingerprint=fingerprint,
        assignee_id=assignee_id, reporter_user_id=reporter_user_id,
        created_at=isoformat(T0), resolved_at=None,
        url=f"/api/projects/{project.slug}/bugs/{bug_id}")


def bus_event(subject: str, data: Any, *, when: datetime | None = None,
              source: str = "bugs") -> Event:
    return Event(type=subject, source=source, data=payload(data),
                 time=isoformat(when or utcnow()))


def bug_created(project: Project, *, when: datetime | None = None, actor_id: str | None = None,
                **bug: Any) -> Event:
    return bus_event(subjects.BUG_CREATED,
                     ev.BugChanged(bug=snapshot(project, **bug), actor_id=actor_id), when=when)


def crash_spike(project: Project, *, crashed: int = 40, sessions: int = 200,
                when: datetime | None = None) -> Event:
    return bus_event(subjects.CRASH_SPIKE_DETECTED, ev.CrashSpikeDetected(
        project_id=project.id, project_slug=project.slug, window_minutes=60, sessions=sessions,
        crashed_sessions=crashed, baseline_crashed=3.5, detected_at=isoformat(when or T0)),
        when=when, source="analytics")


def crash_free_dropped(project: Project, *, rate: float, when: datetime | None = None,
                       version: str | None = "1.2.0") -> Event:
    return bus_event(subjects.CRASH_FREE_RATE_DROPPED, ev.CrashFreeRateDropped(
        project_id=project.id, project_slug=project.slug, window_minutes=60, sessions=1000,
        crashed_sessions=round(1000 * (100 - rate) / 100), crash_free_rate=rate,
        previous_rate=99.5, game_version=version, detected_at=isoformat(when or T0)),
        when=when, source="analytics")


def regression(project: Project, *, kind: str = "recurrence", bug_id: str | None = None,
               when: datetime | None = None) -> Event:
    return bus_event(subjects.REGRESSION_DETECTED, ev.RegressionDetected(
        regression_id=str(uuid.uuid4()), project_id=project.id, project_slug=project.slug,
        kind=kind, version="1.3.0", previous_version="1.2.0", bug_id=bug_id,
        details={"note": "came back"}, detected_at=isoformat(when or T0)),
        when=when, source="analytics")


async def _publish(url: str, events: list[Event]) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for e in events:
            await js.publish(e.type, e.to_json(), headers={"Nats-Msg-Id": e.id})
    finally:
        await nc.close()


def publish(url: str, *events: Event) -> None:
    """Publish `events` to JetStream as their producers' relays do (streams must exist: a
    started worker declares them)."""
    asyncio.run(_publish(url, list(events)))


def evaluate_event(db: Database, settings: IntegrationsSettings, event: Event) -> list[str]:
    """Run the alert consumers' handler on `event` in one transaction; the firings' ids."""
    with db.begin() as session:
        return evaluate.evaluate(session=session, event=event, settings=settings)


def notify_event(db: Database, settings: IntegrationsSettings, event: Event) -> None:
    """Run the notification consumers' handler on `event` in one transaction."""
    with db.begin() as session:
        notification_handlers.dispatch(session=session, event=event, settings=settings)


def outbox(db: Database, subject: str) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(BUS.outbox.c.payload).where(BUS.outbox.c.subject == subject)
                            .order_by(BUS.outbox.c.seq)).all()
    return [json.loads(p)["data"] for (p,) in rows]


def rows(db: Database, sql: str, **params: Any) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


class Inbox:
    """An aiosmtpd handler keeping every message it receives; it can refuse recipients."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        self.refuse: dict[str, str] = {}  # address -> SMTP reply
        self._cond = threading.Condition()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._cond:
            self.messages.append((list(envelope.rcpt_tos),
                                  email.message_from_bytes(envelope.content,
                                                            policy=email.policy.default)))
            self._cond.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, n: int, timeout: float = 10.0) -> list[tuple[list[str], Message]]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.messages) >= n, timeout)
            return list(self.messages)

    def to(self, address: str) -> list[Message]:
        return [m for rcpt, m in self.messages if address in rcpt]


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on a free loopback port."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def body_of(msg: Message) -> str:
    return msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
