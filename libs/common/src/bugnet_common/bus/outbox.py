"""Producer side: events are rows written in the business transaction; the worker relays them.

Invariant: an event exists iff the transaction that caused it committed; it is published at
least once (JetStream de-duplicates retries by `Nats-Msg-Id = event id`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.orm import Session

from .. import metrics
from ..db import Database
from .events import Event, utcnow
from .tables import OUTBOX_CHANNEL, BusTables

log = logging.getLogger(__name__)


def add_event(session: Session, tables: BusTables, event: Event) -> Event:
    """Stage `event` in the caller's transaction."""
    session.execute(sa.insert(tables.outbox).values(
        id=event.id, subject=event.type, payload=event.to_json()))
    return event


PRUNE_EVERY_SECONDS = 60.0


class NotifyWaiter:
    """A LISTEN connection on the outbox channel, used from one thread at a time."""

    def __init__(self, db: Database) -> None:
        self.dsn = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.conn: psycopg.Connection[Any] | None = None

    def wait(self, timeout: float) -> bool:
        """True when notified within `timeout` seconds."""
        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
                self.conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
            for _ in self.conn.notifies(timeout=timeout, stop_after=1):
                return True
            return False
        except psycopg.Error:
            log.warning("outbox listen connection failed", exc_info=True)
            self.close()
            time.sleep(timeout)
            return False

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
            self.conn = None


def _backoff(attempts: int) -> float:
    return min(0.5 * 2 ** attempts, 10.0)


class OutboxRelay:
    """Claims unpublished rows (SKIP LOCKED, so several workers can run), publishes them in
    order with publish_async, and marks them sent in the same transaction as the claim."""

    def __init__(self, db: Database, tables: BusTables, js: Any, *, batch: int = 500,
                 idle_seconds: float = 1.0, linger_seconds: float = 0.02,
                 publish_timeout: float = 5.0,
                 keep_published_seconds: float = 24 * 3600, service: str = "unknown") -> None:
        self.db = db
        self.service = service  # the `service` label of the relay's metrics
        self.outbox = tables.outbox
        self.js = js
        self.batch = batch
        self.idle_seconds = idle_seconds
        self.linger_seconds = linger_seconds
        self.publish_timeout = publish_timeout
        self.keep_published_seconds = keep_published_seconds

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_prune = 0.0
        waiter = NotifyWaiter(self.db)
        try:
            await self._loop(loop, stop, waiter, next_prune)
        finally:
            waiter.close()

    async def _loop(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event,
                    waiter: NotifyWaiter, next_prune: float) -> None:
        while not stop.is_set():
            try:
                sent = await asyncio.to_thread(self.relay_once, loop)
                if loop.time() >= next_prune:
                    await asyncio.to_thread(self.prune)
                    next_prune = loop.time() + PRUNE_EVERY_SECONDS
            except Exception:
                log.exception("outbox relay cycle failed")
                sent = 0
            if sent < self.batch and not stop.is_set():
                # Sleep until a commit adds rows (NOTIFY from the outbox trigger); the timeout
                # is the safety net for retries with backoff and a lost listen connection.
                notified = await asyncio.to_thread(waiter.wait, self.idle_seconds)
                if notified and self.linger_seconds > 0:
                    # Let the commits of the next few milliseconds join this cycle: under load
                    # one claim-publish-mark cycle then carries many rows instead of one or two
                    # (each cycle costs a transaction and three round trips).
                    await asyncio.sleep(self.linger_seconds)

    async def _publish_all(self, rows: list[Any]) -> list[BaseException | None]:
        futures = []
        for row in rows:
            try:
                fut = await self.js.publish_async(row.subject, row.payload,
                                                  headers={"Nats-Msg-Id": str(row.id)})
            except Exception as exc:
                futures.append(exc)
                continue
            futures.append(fut)
        results: list[BaseException | None] = []
        for fut in futures:
            if isinstance(fut, BaseException):
                results.append(fut)
                continue
            try:
                await asyncio.wait_for(fut, self.publish_timeout)
                results.append(None)
            except Exception as exc:
                results.append(exc)
        return results

    def prune(self) -> int:
        """Forget rows published long ago; JetStream keeps the events themselves."""
        cutoff = utcnow() - timedelta(seconds=self.keep_published_seconds)
        o = self.outbox
        with self.db.begin() as session:
            result = session.execute(sa.delete(o).where(o.c.published_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)

    def relay_once(self, loop: asyncio.AbstractEventLoop) -> int:
        """One claim-publish-mark cycle; runs in a thread, publishes on the worker's loop."""
        now = utcnow()
        o = self.outbox
        with self.db.begin() as session:
            rows = session.execute(
                sa.select(o.c.id, o.c.subject, o.c.payload, o.c.attempts)
                .where(o.c.published_at.is_(None))
                .where(sa.or_(o.c.next_attempt_at.is_(None), o.c.next_attempt_at <= now))
                .order_by(o.c.seq)
                .limit(self.batch)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return 0
            future = asyncio.run_coroutine_threadsafe(self._publish_all(list(rows)), loop)
            results = future.result(timeout=self.publish_timeout + 30)
            sent_ids = [row.id for row, err in zip(rows, results, strict=True) if err is None]
            if sent_ids:
                session.execute(sa.update(o).where(o.c.id.in_(sent_ids)).values(published_at=now))
            for row, err in zip(rows, results, strict=True):
                if err is None:
                    continue
                session.execute(sa.update(o).where(o.c.id == row.id).values(
                    attempts=row.attempts + 1,
                    next_attempt_at=now + timedelta(seconds=_backoff(row.attempts)),
                    last_error=f"{type(err).__name__}: {err}"[:500]))
            if len(sent_ids) < len(rows):
                log.warning("outbox publish failed", extra={"failed": len(rows) - len(sent_ids)})
        # Counted once committed: a row marked sent in a transaction that failed is sent again.
        if sent_ids:
            metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(sent_ids))
        if len(sent_ids) < len(rows):
            metrics.OUTBOX_PUBLISH_FAILED.labels(self.service).inc(len(rows) - len(sent_ids))
        return len(sent_ids)
