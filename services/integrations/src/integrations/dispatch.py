"""The one way anything in this service sends an event out: `enqueue`.

Called inside the caller's transaction (an event handler, a use case, the alert evaluator);
it only adds `deliveries` rows, one per enabled webhook subscribed to the event and one for the
project's Discord channel when that is enabled for it. The worker's delivery engine sends
them (delivery/engine.py); nothing is sent from inside a transaction.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Session, select

from bugnet_common.bus.events import isoformat, utcnow
from bugnet_common.logs import current_request_id

from .discord import embeds
from .models import Delivery, DiscordIntegration, ProjectRef, Webhook

log = logging.getLogger(__name__)
DELIVERIES = Delivery.__table__  # type: ignore[attr-defined]

# What webhooks and Discord may subscribe to (spec §7); `ping` is sent only by the test
# endpoints.
EVENTS: tuple[str, ...] = ("bug_created", "bug_updated", "bug_resolved", "comment_added",
                           "regression_detected", "alert_triggered")
PING = "ping"
# NOTIFY'd by `enqueue` (delivered at commit) so the worker's engine wakes at once.
NOTIFY_CHANNEL = "integrations_deliveries"


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def webhook_body(*, event: str, project_slug: str, delivery_id: str, data: dict[str, Any],
                 at: datetime) -> str:
    """The exact body a webhook receives (the signature covers these bytes)."""
    return dumps({"event": event, "project": project_slug, "timestamp": isoformat(at),
                  "delivery_id": delivery_id, "data": data})


def discord_body(*, event: str, project: ProjectRef, data: dict[str, Any], at: datetime) -> str:
    return dumps(embeds.message(event=event, project_slug=project.slug, project_name=project.name,
                                data=data, timestamp=isoformat(at)))


def target_key_of(url: str) -> str:
    """host:port of a stored URL (validated when it was saved)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{host}:{port}"


def discord_target_key(project_id: str) -> str:
    # Discord rate-limits per channel webhook: one queue per project's channel.
    return f"discord:{project_id}"


@dataclass(frozen=True)
class _ProjectTargets:
    slug: str
    name: str
    hooks: tuple[tuple[str, str, tuple[str, ...]], ...]  # (id, url, events) of enabled ones
    discord_events: tuple[str, ...]  # empty when Discord is absent or disabled


_CACHE = "integrations.dispatch.targets"


def _targets(session: Session, project_id: str) -> _ProjectTargets | None:
    """The project's enabled targets, read once per transaction: a consumer applies a whole
    batch of events (often of one project) in one transaction."""
    tx = id(session.get_transaction())
    cache = session.info.get(_CACHE)
    if cache is None or cache[0] != tx:
        cache = session.info[_CACHE] = (tx, {})
    found: dict[str, _ProjectTargets | None] = cache[1]
    if project_id not in found:
        project = session.get(ProjectRef, project_id)
        if project is None:
            found[project_id] = None
        else:
            hooks = session.exec(select(Webhook).where(
                Webhook.project_id == project_id, Webhook.enabled == True)).all()  # noqa: E712
            discord = session.get(DiscordIntegration, project_id)
            found[project_id] = _ProjectTargets(
                slug=project.slug, name=project.name,
                hooks=tuple((h.id, h.url, tuple(h.events)) for h in hooks),
                discord_events=tuple(discord.events) if discord and discord.enabled else ())
    return found[project_id]


def enqueue(session: Session, *, project_id: str, event: str, data: dict[str, Any],
            channels: Collection[str] = ("webhook", "discord")) -> None:
    """Queue `event` with webhook `data` for every target of the project subscribed to it
    (only on the given `channels`: an alert rule names the ones it wants)."""
    targets = _targets(session, project_id)
    if targets is None:
        log.info("event for an unknown project not sent", extra={"project_id": project_id,
                                                                  "event": event})
        return
    now = utcnow()
    rows: list[dict[str, Any]] = []
    if "webhook" in channels:
        for hook_id, url, events in targets.hooks:
            if event not in events:
                continue
            delivery_id = str(uuid.uuid4())
            rows.append({"id": delivery_id, "webhook_id": hook_id, "channel": "webhook",
                         "target_key": target_key_of(url),
                         "body": webhook_body(event=event, project_slug=targets.slug,
                                              delivery_id=delivery_id, data=data, at=now)})
    if "discord" in channels and event in targets.discord_events:
        rows.append({"id": str(uuid.uuid4()), "webhook_id": None, "channel": "discord",
                     "target_key": discord_target_key(project_id),
                     "body": dumps(embeds.message(event=event, project_slug=targets.slug,
                                                  project_name=targets.name, data=data,
                                                  timestamp=isoformat(now)))})
    if rows:
        request_id = current_request_id()
        session.execute(sa.insert(DELIVERIES), [
            {**row, "project_id": project_id, "event": event, "status": "pending",
             "attempts": 0, "created_at": now, "next_attempt_at": now,
             "request_id": request_id} for row in rows])
        session.execute(sa.text(f"NOTIFY {NOTIFY_CHANNEL}"))
