"""``analytics-usage``: the gateway's ``usage_counted`` events added into ``api_usage_daily``.

Idempotent through the inbox (the event id is deterministic per collector batch, so a
re-sent batch is applied once). A count is attributed by its slug (project routes) or its
API-key hash (SDK routes; any key the project ever had, so requests with a replaced key are
still its traffic). A count whose project the read models do not know yet waits in
``api_usage_pending`` and is retried with each later event (a project's first requests
often reach us before its ``project_created``); after ``PENDING_SECONDS`` it is dropped.
Counts naming no project at all (auth, notifications, unknown paths) are not stored.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Session

from analytics.models import ApiKey, Project
from analytics.usage.models import PENDING, USAGE
from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event, utcnow
from bugnet_common.bus.inbox import Consumer, PoisonMessage

log = logging.getLogger(__name__)

DURABLE = "analytics-usage"
PENDING_SECONDS = 600.0
PENDING_BATCH = 5000  # pending rows retried per event (oldest first)
PROJECTS: sa.Table = Project.__table__  # type: ignore[attr-defined]
API_KEYS: sa.Table = ApiKey.__table__  # type: ignore[attr-defined]
_MEASURES = ("requests", "rate_limited", "rate_limited_by_gateway", "refused_by_gateway")

Dimension = tuple[date, str, str]  # (day, endpoint group, status class)


@dataclass
class _Sums:
    requests: int = 0
    rate_limited: int = 0
    rate_limited_by_gateway: int = 0
    refused_by_gateway: int = 0

    def add(self, other: _Sums) -> None:
        for name in _MEASURES:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def values(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _MEASURES}


class _Resolver:
    """Project ids by slug and by key hash, looked up once per event."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.by_slug: dict[str, str | None] = {}
        self.by_hash: dict[str, str | None] = {}

    def project_id(self, slug: str | None, key_hash: str | None) -> str | None:
        if slug:
            if slug not in self.by_slug:
                self.by_slug[slug] = self.session.execute(
                    sa.select(PROJECTS.c.id).where(PROJECTS.c.slug == slug)).scalar()
            return self.by_slug[slug]
        if key_hash:
            if key_hash not in self.by_hash:
                self.by_hash[key_hash] = self.session.execute(
                    sa.select(PROJECTS.c.id)
                    .join(API_KEYS, API_KEYS.c.project_id == PROJECTS.c.id)
                    .where(API_KEYS.c.key_hash == key_hash)).scalar()
            return self.by_hash[key_hash]
        return None


def _parse(item: Any) -> tuple[str | None, str | None, Dimension, _Sums]:
    try:
        n = int(item["count"])
        day = date.fromisoformat(str(item["date"]))
        group = str(item["group"])[:32]
        status_class = str(item["status_class"])[:8]
        rate_limited = bool(item.get("rate_limited"))
        refused = bool(item.get("refused_by_gateway"))
        slug, key_hash = item.get("project_slug"), item.get("api_key_hash")
    except (KeyError, TypeError, ValueError) as exc:
        raise PoisonMessage(f"malformed usage count: {exc}") from exc
    slug = slug[:64] if isinstance(slug, str) and slug else None
    key_hash = key_hash[:64] if isinstance(key_hash, str) and key_hash and not slug else None
    sums = _Sums(requests=n, rate_limited=n if rate_limited else 0,
                 rate_limited_by_gateway=n if rate_limited and refused else 0,
                 refused_by_gateway=n if refused else 0)
    return slug, key_hash, (day, group, status_class), sums


def apply_usage(*, session: Session, event: Event) -> None:
    counts = event.data.get("counts")
    if not isinstance(counts, list):
        raise PoisonMessage("usage_counted without a counts list")
    now = utcnow()
    resolver = _Resolver(session)
    sums: dict[tuple[str, Dimension], _Sums] = defaultdict(_Sums)
    waiting: dict[tuple[str | None, str | None, Dimension], _Sums] = defaultdict(_Sums)
    for item in counts:
        slug, key_hash, dimension, item_sums = _parse(item)
        if item_sums.requests <= 0 or not (slug or key_hash):
            continue
        project_id = resolver.project_id(slug, key_hash)
        if project_id is None:
            waiting[(slug, key_hash, dimension)].add(item_sums)
        else:
            sums[(project_id, dimension)].add(item_sums)
    _retry_pending(session, resolver, sums, now)
    if waiting:
        session.execute(sa.insert(PENDING), [
            {"project_slug": slug, "api_key_hash": key_hash, "day": day,
             "endpoint_group": group, "status_class": status, "received_at": now,
             **s.values()}
            for (slug, key_hash, (day, group, status)), s in waiting.items()
        ])
    _add_counts(session, sums)


def _retry_pending(session: Session, resolver: _Resolver,
                   sums: dict[tuple[str, Dimension], _Sums], now: datetime) -> None:
    """Moves pending counts whose project is now known into `sums`; forgets expired ones."""
    p = PENDING.c
    rows = session.execute(
        sa.select(PENDING).order_by(p.id).limit(PENDING_BATCH).with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return
    done: list[int] = []
    expired = 0
    cutoff = now - timedelta(seconds=PENDING_SECONDS)
    for row in rows:
        project_id = resolver.project_id(row.project_slug, row.api_key_hash)
        if project_id is not None:
            sums[(project_id, (row.day, row.endpoint_group, row.status_class))].add(
                _Sums(**{name: getattr(row, name) for name in _MEASURES}))
            done.append(row.id)
        elif row.received_at < cutoff:
            expired += row.requests
            done.append(row.id)
    if done:
        session.execute(sa.delete(PENDING).where(p.id.in_(done)))
    if expired:
        log.debug("usage counts of no known project dropped", extra={"requests": expired})


def _add_counts(session: Session, sums: dict[tuple[str, Dimension], _Sums]) -> None:
    if not sums:
        return
    # Sorted: concurrent batches lock the same rows in the same order (no deadlocks).
    rows = [
        {"project_id": project_id, "day": day, "endpoint_group": group, "status_class": status,
         **s.values()}
        for (project_id, (day, group, status)), s in sorted(sums.items(), key=lambda kv: kv[0])
    ]
    insert = pg_insert(USAGE).values(rows)
    session.execute(insert.on_conflict_do_update(
        index_elements=[USAGE.c.project_id, USAGE.c.day, USAGE.c.endpoint_group,
                        USAGE.c.status_class],
        set_={name: getattr(USAGE.c, name) + getattr(insert.excluded, name)
              for name in _MEASURES},
    ))


def usage_consumer(durable: str = DURABLE) -> Consumer:
    return Consumer(durable=durable, stream="GATEWAY", subjects=[subjects.USAGE_COUNTED],
                    handler=apply_usage)
