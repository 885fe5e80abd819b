"""The delivery engine: a worker task that sends queued deliveries.

State lives in PostgreSQL, so any number of workers can run and a restarted one resumes:
- Claim: due `pending` rows are leased (`lease_until`) with FOR UPDATE SKIP LOCKED; a row
  whose lease ran out (its worker died mid-attempt) is claimed again.
- Per target (host:port, or one Discord channel) at most `delivery_per_target_concurrency`
  deliveries are in flight in this worker, and only as many as that are claimed: a slow or
  dead endpoint occupies its own slots, never the others'. `delivery_concurrency` caps the
  whole worker.
- The claim reads each delivery's target (webhook URL and secret, Discord URL) with it, so an
  attempt needs no further query. Outcomes are written by one recorder in batches (whatever
  finished meanwhile): per delivery the row, its attempt log entry and, on a final failure,
  the webhook_delivery_failed outbox row, guarded by the lease it was claimed with.
- Finished deliveries older than `delivery_retention_days` are deleted now and then.
- On stop, no new claims; attempts in flight get a few seconds to finish, and the leases of
  any still running are released so the next worker retries them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa
from sqlmodel import col, select

from bugnet_common.bus.events import utcnow
from bugnet_common.db import Database
from bugnet_common.logs import bind_request, request_bound
from bugnet_common.metrics import WEBHOOK_ATTEMPTS, WEBHOOK_RETRIES

from ..dispatch import NOTIFY_CHANNEL
from ..models import Delivery
from ..settings import IntegrationsSettings
from . import send
from .outcomes import apply_outcome, fail_without_attempt
from .prepare import TargetRow, Undeliverable, prepare_from

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 6.0
PRUNE_EVERY_SECONDS = 600.0
CLIENTS_KEPT = 256

_CLAIM = sa.text("""
WITH due AS (
    SELECT id, target_key,
           row_number() OVER (PARTITION BY target_key ORDER BY next_attempt_at, id) AS rn
    FROM deliveries
    WHERE status = 'pending' AND next_attempt_at <= now()
      AND (lease_until IS NULL OR lease_until < now())
), picked AS (
    SELECT d.id, w.url AS hook_url, w.secret_encrypted AS hook_secret, w.enabled AS hook_enabled,
           di.webhook_url_encrypted AS discord_url, di.enabled AS discord_enabled
    FROM deliveries d JOIN due ON due.id = d.id
    LEFT JOIN webhooks w ON w.id = d.webhook_id
    LEFT JOIN discord_integrations di ON d.channel = 'discord' AND di.project_id = d.project_id
    WHERE due.rn <= :per_target - COALESCE((CAST(:busy AS jsonb) ->> due.target_key)::int, 0)
    ORDER BY d.next_attempt_at, d.id
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE deliveries SET lease_until = now() + make_interval(secs => :lease)
FROM picked WHERE deliveries.id = picked.id
  AND deliveries.status = 'pending' AND (deliveries.lease_until IS NULL OR deliveries.lease_until < now())
RETURNING deliveries.id, deliveries.channel, deliveries.event, deliveries.body,
          deliveries.target_key, deliveries.lease_until, picked.hook_url, picked.hook_secret,
          picked.hook_enabled, picked.discord_url, picked.discord_enabled, deliveries.request_id,
          deliveries.attempts
""")
RECORD_BATCH = 500


@dataclass(frozen=True)
class Claimed:
    id: str
    channel: str
    event: str
    body: str
    target_key: str
    lease_until: datetime
    target: TargetRow | None
    request_id: str | None = None  # of what caused the delivery: its log lines carry it
    attempts: int = 0  # made before this claim

    @classmethod
    def from_row(cls, row: Any) -> Claimed:
        (id_, channel, event, body, key, lease, hook_url, hook_secret, hook_enabled,
         discord_url, discord_enabled, request_id, attempts) = row
        target = None
        if channel == "webhook" and hook_url is not None:
            target = TargetRow(hook_url, hook_secret, bool(hook_enabled))
        elif channel == "discord" and discord_url is not None:
            target = TargetRow(discord_url, None, bool(discord_enabled))
        return cls(id_, channel, event, body, key, lease, target, request_id, int(attempts or 0))


Result = tuple[Claimed, "send.Outcome | str", datetime, "asyncio.Future[None]"]


class DeliveryEngine:
    def __init__(self, *, settings: IntegrationsSettings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.inflight: dict[str, Claimed] = {}
        self.by_target: dict[str, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.wake = asyncio.Event()
        self.results: asyncio.Queue[Result] = asyncio.Queue()
        self.clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()

    async def task(self, _worker: Any, stop: asyncio.Event) -> None:
        """The worker task: claim, send, record, until `stop`."""
        self.wake = asyncio.Event()
        self.results = asyncio.Queue()
        listener = asyncio.create_task(self._listen(stop))
        recorder = asyncio.create_task(self._recorder())
        next_prune = time.monotonic()
        try:
            while not stop.is_set():
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
                    await self._prune_safely()
                self.wake.clear()  # before claiming: a notification from now on is not lost
                claimed = await self._claim_safely()
                for item in claimed:
                    self._start(item)
                if claimed and len(self.inflight) < self.settings.delivery_concurrency:
                    continue  # there may be more due right now
                waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
                await asyncio.wait(waiters, timeout=self.settings.delivery_poll_seconds,
                                   return_when=asyncio.FIRST_COMPLETED)
                for w in waiters:
                    w.cancel()
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            await self._shutdown()
            recorder.cancel()
            await asyncio.gather(recorder, return_exceptions=True)

    async def _listen(self, stop: asyncio.Event) -> None:
        """Wake the claim loop when `enqueue` commits new deliveries (NOTIFY); polling every
        `delivery_poll_seconds` covers retries falling due and a lost connection."""
        dsn = self.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not stop.is_set():
            try:
                conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True,
                                                             connect_timeout=5)
                async with conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while not stop.is_set():
                        async for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("delivery notification listener failed; polling", exc_info=True)
                await asyncio.sleep(2.0)

    async def _prune_safely(self) -> None:
        try:
            await asyncio.to_thread(self.prune)
        except Exception:
            log.warning("pruning old deliveries failed", exc_info=True)

    def prune(self) -> int:
        """Delete finished deliveries older than the retention (attempts go by cascade)."""
        cutoff = utcnow() - timedelta(days=self.settings.delivery_retention_days)
        table = Delivery.__table__  # type: ignore[attr-defined]
        with self.db.begin() as session:
            result = session.execute(sa.delete(table).where(
                table.c.status != "pending", table.c.created_at < cutoff))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # ---- claiming ---------------------------------------------------------------------------

    async def _claim_safely(self) -> list[Claimed]:
        free = self.settings.delivery_concurrency - len(self.inflight)
        if free <= 0:
            return []
        try:
            return await asyncio.to_thread(self.claim, free, dict(self.by_target))
        except Exception:
            log.warning("claiming deliveries failed", exc_info=True)
            await asyncio.sleep(min(1.0, self.settings.delivery_poll_seconds * 4))
            return []

    def claim(self, limit: int, busy: dict[str, int]) -> list[Claimed]:
        """Lease up to `limit` due deliveries, respecting per-target capacity."""
        with self.db.begin() as session:
            rows = session.execute(_CLAIM, {
                "per_target": self.settings.delivery_per_target_concurrency,
                "busy": json.dumps(busy), "limit": limit,
                "lease": self.settings.delivery_lease_seconds}).all()
        return [Claimed.from_row(row) for row in rows]

    def _start(self, item: Claimed) -> None:
        self.inflight[item.id] = item
        self.by_target[item.target_key] = self.by_target.get(item.target_key, 0) + 1
        task = asyncio.create_task(self._deliver(item))
        self.tasks.add(task)
        task.add_done_callback(functools.partial(self._done, item))

    def _done(self, item: Claimed, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.inflight.pop(item.id, None)
        left = self.by_target.get(item.target_key, 1) - 1
        if left > 0:
            self.by_target[item.target_key] = left
        else:
            self.by_target.pop(item.target_key, None)
        self.wake.set()

    # ---- one delivery -------------------------------------------------------------------

    async def _deliver(self, item: Claimed) -> None:
        bind_request(item.request_id)  # this task's own context: its log lines carry the id
        started_at = utcnow()
        result: send.Outcome | str
        try:
            prepared = prepare_from(delivery_id=item.id, channel=item.channel, event=item.event,
                                    body=item.body, target=item.target, settings=self.settings)
        except Undeliverable as exc:
            result = str(exc)
        else:
            result = await send.send_async(self._client(item.target_key), prepared, self.settings)
        recorded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self.results.put((item, result, started_at, recorded))
        await recorded  # the slot stays taken until the outcome is stored

    async def _recorder(self) -> None:
        """Store outcomes in batches of whatever finished meanwhile (one transaction each)."""
        while True:
            batch = [await self.results.get()]
            while not self.results.empty() and len(batch) < RECORD_BATCH:
                batch.append(self.results.get_nowait())
            states: dict[str, str] = {}
            try:
                states = await asyncio.to_thread(self._record_batch, batch)
            except Exception:
                # Not stored: the leases run out and these deliveries are attempted again.
                log.exception("recording delivery outcomes failed", extra={"count": len(batch)})
            count_attempts(batch, states)
            for item, result, _, recorded in batch:
                if not recorded.done():
                    recorded.set_result(None)
                if isinstance(result, send.Outcome):
                    with request_bound(item.request_id):
                        log.info("delivery attempt", extra={
                            "delivery_id": item.id, "event": item.event,
                            "channel": item.channel, "delivered": result.delivered,
                            "response_code": result.response_code,
                            "duration_ms": result.duration_ms, "error": result.error})

    def _client(self, key: str) -> httpx.AsyncClient:
        # One client (connection pool) per target: a connection made with one host's TLS name
        # is never reused for another host that shares its address.
        client = self.clients.get(key)
        if client is None:
            client = httpx.AsyncClient(
                follow_redirects=False, trust_env=False,
                limits=httpx.Limits(max_connections=self.settings.delivery_per_target_concurrency,
                                    max_keepalive_connections=self.settings.delivery_per_target_concurrency))
            self.clients[key] = client
            while len(self.clients) > CLIENTS_KEPT:
                _, old = self.clients.popitem(last=False)
                task = asyncio.create_task(old.aclose())
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        else:
            self.clients.move_to_end(key)
        return client

    def _record_batch(self, batch: list[Result]) -> dict[str, str]:
        """Store the outcomes; what each recorded delivery became (its status, or "retry" when
        it is pending again), by id."""
        states: dict[str, str] = {}
        with self.db.begin() as session:
            ids = [item.id for item, _, _, _ in batch]
            rows = {d.id: d for d in session.exec(
                select(Delivery).where(col(Delivery.id).in_(ids)).with_for_update())}
            for item, result, started_at, _ in batch:
                delivery = rows.get(item.id)
                if delivery is None or delivery.status != "pending" \
                        or delivery.lease_until != item.lease_until:
                    with request_bound(item.request_id):
                        log.warning("delivery lease lost before its outcome was recorded",
                                    extra={"delivery_id": item.id})
                    continue
                if isinstance(result, str):
                    fail_without_attempt(session, delivery, result)
                    states[item.id] = "undeliverable"
                else:
                    apply_outcome(session, delivery, result, started_at=started_at,
                                  settings=self.settings)
                    states[item.id] = "retry" if delivery.status == "pending" \
                        else delivery.status
        return states

    # ---- stopping -----------------------------------------------------------------------

    async def _shutdown(self) -> None:
        if self.tasks:
            _, pending = await asyncio.wait(set(self.tasks), timeout=STOP_GRACE_SECONDS)
            unfinished = [self.inflight[i].id for i in list(self.inflight)]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            if unfinished:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.release, unfinished)
        for client in self.clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()
        self.clients.clear()

    def release(self, ids: list[str]) -> None:
        """Give up the leases of deliveries this worker will not finish (due again now)."""
        with self.db.begin() as session:
            session.execute(sa.update(Delivery.__table__)  # type: ignore[attr-defined]
                            .where(Delivery.__table__.c.id.in_(ids),  # type: ignore[attr-defined]
                                   Delivery.__table__.c.status == "pending")  # type: ignore[attr-defined]
                            .values(lease_until=None))


def count_attempts(batch: list[Result], states: dict[str, str]) -> None:
    """Count the attempts of a recorded batch by what came of them (see WEBHOOK_ATTEMPTS); an
    attempt whose outcome was not stored is counted as a retry (its lease runs out and it is
    attempted again)."""
    for item, result, _, _ in batch:
        if isinstance(result, str):
            WEBHOOK_ATTEMPTS.labels(item.channel, "undeliverable").inc()
            continue
        WEBHOOK_ATTEMPTS.labels(item.channel, states.get(item.id, "retry")).inc()
        if item.attempts > 0:
            WEBHOOK_RETRIES.labels(item.channel).inc()
