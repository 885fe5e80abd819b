"""Group commit for the SDK ingestion endpoints (session starts and ends, perf snapshots).

Each request validates its body, hands one `Pending` item to its process's `Ingestor` and
waits. A writer thread takes every item waiting at that moment (under load a batch fills while
the previous one is being written; no added delay when idle) and writes them all in one
transaction with a few set-based statements (see `sessions/ingest.py`, `perf/service.py`).

Linger: behind the gateway, requests arrive paced by Envoy rather than in bursts, so "every
item waiting at that moment" is often one or two, and each transaction's fixed cost (planning
the set-based statement, the commit) is paid per request. So while requests keep coming (the
previous batch ended moments ago) a writer waits up to `linger` for more before writing. Measured
through Envoy: 1.6 requests per commit without it, ~14 with 2 ms.

Invariants:
- An item is answered with success only after the transaction holding it committed: an
  accepted request is never lost.
- A batch that fails is retried item by item, each in its own transaction, so an item that
  cannot be stored fails alone and its error reaches its own request. Writes are idempotent
  per item where a retry could repeat them (session starts and ends).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import exc as sa_exc

from bugnet_common import errors
from bugnet_common.bus.events import utcnow
from bugnet_common.db import Database
from bugnet_common.groupcommit import BatchWriter, WriterPool

log = logging.getLogger(__name__)

# A request gives up waiting after this long (gunicorn's worker timeout is 30 s).
WAIT_SECONDS = 25.0
# How long a batch keeps retrying while the database is unreachable before its requests fail
# (503, and the client retries): long enough to ride out a restart.
OUTAGE_SECONDS = 20.0


def _held_lock() -> Any:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass
class Pending:
    """One request's item, waiting for its batch to commit."""

    kind: str  # "start", "end", "perf"
    key_hash: str
    values: dict[str, Any]
    project_id: str | None = None  # when the request resolved its key already
    received_at: datetime = field(default_factory=utcnow)
    result: Any = None
    error: BaseException | None = None
    resolved: bool = False
    # Held until the item is resolved: the cheapest wake-up there is (a threading.Event
    # costs a Condition and a fresh waiter lock per wait, on the hottest path).
    _signal: Any = field(default_factory=_held_lock, repr=False)

    def resolve(self, result: Any = None, error: BaseException | None = None) -> None:
        """Answer the waiting request (the first answer wins)."""
        if self.resolved:
            return
        self.result, self.error, self.resolved = result, error, True
        self._signal.release()

    def wait(self, timeout: float) -> bool:
        """True once resolved; False after `timeout` seconds."""
        return bool(self._signal.acquire(timeout=timeout))


# Writes `batch` in one transaction and commits it; returns each item's answer (or the
# ApiError for it) by index. Items left out failed with an unexpected error.
BatchWrite = Callable[[psycopg.Connection[Any], Sequence[Pending]], Mapping[int, Any]]


class Ingestor:
    """One per app and process: a queue of pending items and the threads that write them."""

    def __init__(self, write: BatchWrite, *, writers: int = 1, max_batch: int = 256,
                 linger: float = 0.0, name: str = "analytics-ingest") -> None:
        self.pool: WriterPool[Pending] = WriterPool(
            lambda db, pending: _Writer(db, pending, max_batch, write, linger),
            writers=writers, name=name)

    def submit(self, db: Database, item: Pending, timeout: float = WAIT_SECONDS) -> Any:
        """Store one item; returns its answer once its transaction committed."""
        self.pool.put(db, item)
        if not item.wait(timeout):
            # It may still be written; the client sees an error and may retry (idempotent).
            raise errors.ServiceUnavailable("The request could not be stored in time; "
                                            "retry shortly")
        if item.error is not None:
            raise item.error
        return item.result


class _Writer(BatchWriter[Pending]):
    """One writer thread: a batch in one transaction; through a database outage, retried."""

    name = "analytics ingest"

    def __init__(self, db: Database, pending: queue.SimpleQueue[Pending], max_batch: int,
                 write: BatchWrite, linger: float = 0.0) -> None:
        super().__init__(db, pending, max_batch, linger)
        self.write_batch = write

    def write(self, batch: list[Pending]) -> None:
        try:
            results = self._write_through_outages(batch)
        except Exception as exc:
            self.discard_connection()
            if len(batch) == 1:
                log.warning("ingest item failed (%s: %s)", type(exc).__name__, exc)
                batch[0].resolve(error=exc if isinstance(exc, errors.ApiError) else
                                 errors.ServiceUnavailable("The request could not be stored; "
                                                           "retry shortly"))
                return
            log.warning("ingest batch of %d failed (%s); retrying one by one",
                        len(batch), type(exc).__name__)
            for item in batch:
                self.write([item])
            return
        for i, item in enumerate(batch):
            result = results.get(i, _MISSING)
            if result is _MISSING:
                item.resolve(error=errors.ApiError())
            elif isinstance(result, BaseException):
                item.resolve(error=result)
            else:
                item.resolve(result)

    def _write_through_outages(self, batch: list[Pending]) -> Mapping[int, Any]:
        """Write `batch`; while the database cannot be reached (a restart, a failover), wait
        and try again until the oldest request has waited OUTAGE_SECONDS."""
        delay = 0.1
        while True:
            try:
                return self.write_batch(self.connection(), batch)
            except (psycopg.OperationalError, sa_exc.OperationalError) as exc:
                self.discard_connection()
                waited = (utcnow() - batch[0].received_at).total_seconds()
                if waited + delay > OUTAGE_SECONDS:
                    raise
                log.warning("database unavailable (%s); retrying the batch in %.1f s",
                            type(exc).__name__, delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)


_MISSING = object()
