"""Consumer side: the effect and the inbox row commit together; ack only after commit.

Transient failures are nak'ed with a delay; a message that fails `max_deliver` times, or
that is not an event at all, is parked (stored with its error and logged) and terminated.

While an event's handler runs, the event's `correlation_id` (the request id of the request
that caused it) is bound as the request id of the log lines, so a request can be followed from
the gateway's access log through the api that took it to every worker that reacted; the events
a handler emits carry the same id on (see `Event.correlation_id`).

A fetched batch is applied in ONE transaction (`process_batch`): the inbox rows of the batch
in one statement, each handler in a savepoint of its own, one commit, then the acks. A handler
that fails rolls back its savepoint and its inbox row, so its message alone is nak'ed or parked
while the rest of the batch commits. Per event this saves a transaction, a thread hop and a
synchronous ack round trip, which is most of a consumer's cost under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from ..db import Database
from ..logs import request_bound
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
        with request_bound(event.correlation_id):
            handler(session=session, event=event)
    return True


@dataclass(frozen=True)
class Outcome:
    """What `process_batch` did with one event: "applied", "duplicate", "poison" or "failed"."""

    kind: str
    error: BaseException | None = None


def process_batch(db: Database, tables: BusTables, consumer: str, events: list[Event],
                  handler: Handler) -> list[Outcome]:
    """Apply `handler` once per (consumer, event id) to each of `events`, in order, in one
    transaction. Raises only when the transaction itself fails (the database is down):
    nothing committed.

    The batch first runs without savepoints (each costs two round trips per event). If a
    handler fails, that attempt is rolled back and the batch runs again with a savepoint per
    event, so the failure is confined to its own event (see the module docstring)."""
    if not events:  # a fetch may return no message (or only undecodable ones)
        return []
    try:
        return _apply(db, tables, consumer, events, handler, confined=False)
    except _HandlerFailed:
        return _apply(db, tables, consumer, events, handler, confined=True)


class _HandlerFailed(Exception):
    """A handler failed in an unconfined attempt: the transaction is rolled back."""


def _apply(db: Database, tables: BusTables, consumer: str, events: list[Event],
           handler: Handler, *, confined: bool) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with db.begin() as session:
        fresh = set(session.execute(
            _claim(tables),
            {"consumer": consumer, "ids": list(dict.fromkeys(e.id for e in events))},
        ).scalars())
        failed: list[str] = []
        for event in events:
            if event.id not in fresh:
                outcomes.append(Outcome("duplicate"))
                continue
            fresh.discard(event.id)  # a second copy within the batch is a duplicate
            if not confined:
                try:
                    with request_bound(event.correlation_id):
                        handler(session=session, event=event)
                except Exception as exc:
                    raise _HandlerFailed from exc
                outcomes.append(Outcome("applied"))
                continue
            savepoint = session.begin_nested()
            try:
                with request_bound(event.correlation_id):
                    handler(session=session, event=event)
                savepoint.commit()
                outcomes.append(Outcome("applied"))
            except Exception as exc:  # confined to this event; nak or park follows
                savepoint.rollback()
                failed.append(event.id)
                outcomes.append(Outcome("poison" if isinstance(exc, PoisonMessage) else "failed",
                                        exc))
        if failed:  # their inbox rows go: the redelivery must apply them
            session.execute(sa.delete(tables.inbox).where(
                tables.inbox.c.consumer == consumer, tables.inbox.c.event_id.in_(failed)))
    return outcomes


def _claim(tables: BusTables) -> sa.TextClause:
    """The batch's inbox rows in one statement whose text never changes (compiled once)."""
    return sa.text(
        f"INSERT INTO {tables.inbox.name} (consumer, event_id) "
        "SELECT :consumer, unnest(CAST(:ids AS text[])) "
        "ON CONFLICT DO NOTHING RETURNING event_id")


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


async def handle_batch(db: Database, tables: BusTables, consumer: Consumer, msgs: list[Any],
                       stop: asyncio.Event | None = None) -> list[str]:
    """Process a fetched batch of JetStream messages (see the module docstring); returns what
    was done with each, in order: acked, duplicate, nak or parked.

    While the transaction itself fails (the database is down or restarting) the batch is
    retried here with a growing pause, its messages kept in progress, so an outage never uses
    up their deliveries (JetStream stops redelivering after `max_deliver`). With `stop` set the
    error is raised instead and the messages stay unacked, for redelivery."""
    decoded: list[tuple[Any, Event]] = []
    done: dict[int, str] = {}
    for n, msg in enumerate(msgs):
        try:
            decoded.append((msg, Event.from_json(msg.data)))
        except ValueError as exc:
            await asyncio.to_thread(park, db, tables, consumer.durable, msg.subject, msg.data,
                                    None, f"undecodable: {exc}")
            await msg.term()
            done[n] = "parked"
    outcomes = await _until_committed(db, tables, consumer, decoded, stop)
    results = iter(zip(decoded, outcomes, strict=True))
    for n in range(len(msgs)):
        if n in done:
            continue
        (msg, event), outcome = next(results)
        if outcome.kind in ("applied", "duplicate"):
            await msg.ack()  # a lost ack means a redelivery, which the inbox makes a no-op
            done[n] = "acked" if outcome.kind == "applied" else "duplicate"
        else:
            done[n] = await _refuse(db, tables, consumer, msg, event, outcome)
    return [done[n] for n in range(len(msgs))]


async def _refuse(db: Database, tables: BusTables, consumer: Consumer, msg: Any, event: Event,
                  outcome: Outcome) -> str:
    """Park a poison message, or one that failed its last delivery; nak the others."""
    with request_bound(event.correlation_id):
        return await _refuse_bound(db, tables, consumer, msg, event, outcome)


async def _refuse_bound(db: Database, tables: BusTables, consumer: Consumer, msg: Any,
                        event: Event, outcome: Outcome) -> str:
    exc = outcome.error
    delivered = getattr(msg.metadata, "num_delivered", 1) or 1
    if outcome.kind == "poison" or delivered >= consumer.max_deliver:
        why = f"poison: {exc}" if outcome.kind == "poison" else f"{type(exc).__name__}: {exc}"
        await asyncio.to_thread(park, db, tables, consumer.durable, msg.subject, msg.data,
                                event.id, why)
        await msg.term()
        return "parked"
    delay = consumer.backoff[min(delivered - 1, len(consumer.backoff) - 1)]
    log.warning("handler failed; will retry", exc_info=exc,
                extra={"consumer": consumer.durable, "event_id": event.id, "delay": delay})
    await msg.nak(delay=delay)
    return "nak"


async def _until_committed(db: Database, tables: BusTables, consumer: Consumer,
                           decoded: list[tuple[Any, Event]],
                           stop: asyncio.Event | None) -> list[Outcome]:
    pause = 0.5
    while True:
        try:
            return await asyncio.to_thread(process_batch, db, tables, consumer.durable,
                                           [e for _, e in decoded], consumer.handler)
        except Exception:
            if stop is None or stop.is_set():
                raise
            log.warning("batch not committed; retrying", exc_info=True,
                        extra={"consumer": consumer.durable, "delay": pause})
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)
            for msg, _ in decoded:
                with contextlib.suppress(Exception):
                    await msg.in_progress()  # restarts ack_wait: no redelivery meanwhile
