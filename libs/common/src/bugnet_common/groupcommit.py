"""Group commit for hot ingestion paths: request threads queue items and wait; writer threads
take every item waiting when they are free and write them in one transaction.

The services' ingestion code (bugs' SDK submits, analytics' sessions and perf snapshots) keeps
what a batch means — the rows, the answers, the failures — in a `BatchWriter.write`; this
module keeps the rest: the queue, the writer threads started on first use (after the server's
fork), draining a batch (optionally lingering under a steady stream, see `BatchWriter.run`),
the thread's own database connection, and never letting a writer die with requests waiting.

Request ids: a writer thread serves many requests at once, so it binds none; its log lines
(per batch) carry no `request_id`, and neither do the events it creates (their
`correlation_id` is None unless the service passes one). Each request thread still logs with
its own id while it waits for its batch.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import psycopg
from sqlalchemy.pool import PoolProxiedConnection

from .db import Database

log = logging.getLogger(__name__)

# A writer lingers only when its previous batch ended less than this long before the next
# request arrived: a steady stream, not an idle service answering one request now and then.
BUSY_GAP_SECONDS = 0.005


class Item(Protocol):
    """What a writer needs of a queued item: whether it was answered, and answering it."""

    @property
    def resolved(self) -> bool: ...

    def resolve(self, result: Any = None, error: BaseException | None = None) -> None: ...


T = TypeVar("T", bound=Item)


class BatchWriter(Generic[T]):
    """One writer thread's loop, with its own database connection. Subclasses write a batch
    in `write` and answer each of its items."""

    name = "ingest"

    def __init__(self, db: Database, pending: queue.SimpleQueue[T], max_batch: int,
                 linger: float = 0.0) -> None:
        self.db = db
        self.pending = pending
        self.max_batch = max_batch
        self.linger = linger
        self._pooled: PoolProxiedConnection | None = None

    def write(self, batch: list[T]) -> None:
        raise NotImplementedError

    def run(self) -> None:
        finished = 0.0  # when the previous batch was written
        while True:
            batch = self.next_batch(busy=time.monotonic() - finished < BUSY_GAP_SECONDS)
            try:
                self.write(batch)
            except BaseException as exc:  # never let the thread die with requests waiting
                log.exception("%s batch failed", self.name)
                for item in batch:
                    if not item.resolved:
                        item.resolve(error=exc)
            finished = time.monotonic()

    def next_batch(self, *, busy: bool) -> list[T]:
        """Every item waiting now (at least one: blocks for it). While `busy`, waits up to
        `linger` for more: behind a gateway, requests arrive paced rather than in bursts, and
        a batch's fixed cost (planning, commit) is then paid by more of them."""
        batch = [self.pending.get()]
        deadline = time.monotonic() + self.linger if busy else 0.0
        while len(batch) < self.max_batch:
            try:
                batch.append(self.pending.get_nowait())
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(self.pending.get(timeout=left))
                except queue.Empty:
                    break
        return batch

    def connection(self) -> psycopg.Connection[Any]:
        """The thread's own pooled connection, kept between batches (no checkout, no ping)."""
        if self._pooled is None:
            self._pooled = self.db.engine.raw_connection()
        pg = self._pooled.driver_connection
        assert isinstance(pg, psycopg.Connection)
        if pg.closed or pg.broken:
            self.discard_connection()
            return self.connection()
        return pg

    def discard_connection(self) -> None:
        """After a failure: the connection may be broken or mid-transaction; start afresh."""
        pooled, self._pooled = self._pooled, None
        if pooled is not None:
            with contextlib.suppress(Exception):
                pooled.invalidate()


class WriterPool(Generic[T]):
    """One per app and process: the queue and the writer threads, started on first use (in
    the process that serves requests, after the server's fork) and replaced if one died."""

    def __init__(self, make_writer: Callable[[Database, queue.SimpleQueue[T]], BatchWriter[T]],
                 *, writers: int, name: str) -> None:
        self.make_writer = make_writer
        self.writers = writers
        self.name = name
        self.queue: queue.SimpleQueue[T] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def put(self, db: Database, item: T) -> None:
        self._ensure_started(db)
        self.queue.put(item)

    def _ensure_started(self, db: Database) -> None:
        if len(self._threads) == self.writers and all(t.is_alive() for t in self._threads):
            return
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            while len(self._threads) < self.writers:
                writer = self.make_writer(db, self.queue)
                thread = threading.Thread(target=writer.run, daemon=True,
                                          name=f"{self.name}-{len(self._threads)}")
                thread.start()
                self._threads.append(thread)
