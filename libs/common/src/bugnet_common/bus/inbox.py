"""Consumer side: the effect and the inbox row commit together; ack only after commit.

Transient failures are nak'ed with a delay; a message that fails `max_deliver` times, or
that is not an event at all, is parked (stored with its error and logged) and terminated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from ..db import Database
from .events import Event
from .tables import BusTables

log = logging.getLogger(__name__)

Handler = Callable[..., None]  # handler(*, session, event) -> None


class PoisonMessage(Exception):
    """Raised by a handler for a message that will never succeed; parked at once."""


@dataclass
class Consumer:
    durable: str  # <svc>-<purpose>
    stream: str
    subjects: list[str]
    handler: Handler
    max_deliver: int = 8
    backoff: list[float] = field(default_factory=lambda: [1, 2, 5, 10, 30, 60, 120])
    batch: int = 100


def process(db: Database, tables: BusTables, consumer: str, event: Event, handler: Handler) -> bool:
    """Apply `handler` once per (consumer, event id). False when it was a duplicate."""
    with db.begin() as session:
        inserted = session.execute(
            pg_insert(tables.inbox).values(consumer=consumer, event_id=event.id)
            .on_conflict_do_nothing().returning(tables.inbox.c.event_id)
        ).first()
        if inserted is None:
            return False
        handler(session=session, event=event)
    return True


def park(db: Database, tables: BusTables, consumer: str, subject: str, raw: bytes,
         event_id: str | None, error: str) -> None:
    with db.begin() as session:
        _park(session, tables, consumer, subject, raw, event_id, error)
    log.error("message parked", extra={"consumer": consumer, "subject": subject,
                                       "event_id": event_id, "error": error})


def _park(session: Session, tables: BusTables, consumer: str, subject: str, raw: bytes,
          event_id: str | None, error: str) -> None:
    session.execute(sa.insert(tables.parked).values(
        consumer=consumer, subject=subject, event_id=event_id, payload=raw, error=error[:2000]))


async def handle_message(db: Database, tables: BusTables, consumer: Consumer, msg: Any) -> str:
    """Process one JetStream message; returns what was done: acked, duplicate, nak, parked."""
    try:
        event = Event.from_json(msg.data)
    except ValueError as exc:
        await asyncio.to_thread(park, db, tables, consumer.durable, msg.subject, msg.data, None,
                                f"undecodable: {exc}")
        await msg.term()
        return "parked"
    try:
        fresh = await asyncio.to_thread(process, db, tables, consumer.durable, event,
                                        consumer.handler)
    except PoisonMessage as exc:
        await asyncio.to_thread(park, db, tables, consumer.durable, msg.subject, msg.data,
                                event.id, f"poison: {exc}")
        await msg.term()
        return "parked"
    except Exception as exc:
        delivered = getattr(msg.metadata, "num_delivered", 1) or 1
        if delivered >= consumer.max_deliver:
            await asyncio.to_thread(park, db, tables, consumer.durable, msg.subject, msg.data,
                                    event.id, f"{type(exc).__name__}: {exc}")
            await msg.term()
            return "parked"
        delay = consumer.backoff[min(delivered - 1, len(consumer.backoff) - 1)]
        log.warning("handler failed; will retry", exc_info=True,
                    extra={"consumer": consumer.durable, "event_id": event.id, "delay": delay})
        await msg.nak(delay=delay)
        return "nak"
    await msg.ack_sync()
    return "acked" if fresh else "duplicate"
