"""The asyncio runtime behind every `<svc>-worker`: outbox relay, consumers, export replies.

With `metrics_address` set (the services' `main` sets it from WORKER_METRICS_HOST/PORT), a
small HTTP server in a thread serves `/metrics` (consumer lag refreshed every `lag_seconds`,
events handled, outbox rows published) and `/healthz` (200 while the loop turns and NATS is
connected).

Stops cleanly on SIGTERM/SIGINT: pull subscriptions are unsubscribed before the connection is
closed (nats-py's drain hangs while they are open).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nats.errors import TimeoutError as NatsTimeout
from nats.js import api as js_api

from .. import metrics
from ..db import Database
from ..logs import configure_logging
from ..settings import ServiceSettings
from .events import ExportRequest
from .inbox import Consumer, handle_batch
from .nats_io import close_quietly, connect, ensure_streams
from .outbox import OutboxRelay
from .subjects import EXPORT_REQUESTED
from .tables import BusTables

log = logging.getLogger(__name__)

HEARTBEAT_STALE_SECONDS = 15.0

ExportFn = Callable[[ExportRequest], dict[str, Any]]
Task = Callable[[Any, asyncio.Event], Awaitable[None]]  # (worker, stop) -> None


@dataclass
class Worker:
    service: str
    nats_url: str
    db: Database
    tables: BusTables
    consumers: Sequence[Consumer] = ()
    export: ExportFn | None = None
    tasks: Sequence[Task] = ()
    relay: bool = True
    nc: Any = None
    js: Any = None
    subscriptions: list[Any] = field(default_factory=list)
    # Set once streams exist and every subscription reached the server (tests wait on it).
    ready: threading.Event = field(default_factory=threading.Event)
    # (host, port) of the /metrics + /healthz server; None: no server (tests).
    metrics_address: tuple[str, int] | None = None
    metrics_server: metrics.MetricsServer | None = None
    # Durable consumers bound outside `consumers` whose lag is reported too: (stream, durable).
    lag_watch: Sequence[tuple[str, str]] = ()
    lag_seconds: float = 5.0
    heartbeat: float = 0.0  # time.monotonic() of the loop's last turn, read by /healthz

    async def run(self, stop: asyncio.Event) -> None:
        if self.metrics_address is not None and self.metrics_server is None:
            self.metrics_server = metrics.MetricsServer(*self.metrics_address,
                                                        health=self.health).start()
            log.info("worker metrics served", extra={"port": self.metrics_server.port})
        try:
            await self._run(stop)
        finally:
            if self.metrics_server is not None:
                self.metrics_server.stop()
                self.metrics_server = None

    async def _run(self, stop: asyncio.Event) -> None:
        self.nc = await connect(self.nats_url, f"{self.service}-worker", stop=stop)
        self.js = self.nc.jetstream()
        await self.retry(lambda: ensure_streams(self.js), stop)
        coros: list[Awaitable[Any]] = [stop.wait()]  # subscriptions alone keep a worker busy
        coros += [self._beat(stop), self._watch_lag(stop)]
        if self.relay:
            coros.append(OutboxRelay(self.db, self.tables, self.js, service=self.service).run(stop))
        for consumer in self.consumers:
            coros.append(self._consume(consumer, stop))
        if self.export is not None:
            sub = await self.nc.subscribe(EXPORT_REQUESTED, queue=f"{self.service}-export",
                                          cb=self._answer_export)
            self.subscriptions.append(sub)
        for task in self.tasks:
            coros.append(task(self, stop))
        await self.nc.flush()
        self.heartbeat = time.monotonic()
        self.ready.set()
        log.info("worker started", extra={"consumers": [c.durable for c in self.consumers]})
        try:
            await asyncio.gather(*coros)
        finally:
            for sub in self.subscriptions:
                try:
                    await sub.unsubscribe()
                except Exception:
                    log.debug("unsubscribe failed", exc_info=True)
            await close_quietly(self.nc)

    def health(self) -> tuple[bool, str]:
        """For /healthz (any thread): started, NATS connected, and the loop turned lately."""
        if not self.ready.is_set():
            return False, "starting"
        if self.nc is None or not self.nc.is_connected:
            return False, "NATS not connected"
        stalled = time.monotonic() - self.heartbeat
        if stalled > HEARTBEAT_STALE_SECONDS:
            return False, f"event loop stalled for {stalled:.0f} s"
        return True, "ok"

    async def _beat(self, stop: asyncio.Event) -> None:
        """Note every second that the loop turns (for /healthz)."""
        while not stop.is_set():
            self.heartbeat = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def _watch_lag(self, stop: asyncio.Event) -> None:
        """Refresh the consumers' lag every `lag_seconds`."""
        while not stop.is_set():
            await self.refresh_lag()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.lag_seconds)

    async def refresh_lag(self) -> None:
        """Read num_pending / num_ack_pending of every durable consumer into the gauges."""
        watched = [(c.stream, c.durable) for c in self.consumers] + list(self.lag_watch)
        for stream, durable in watched:
            try:
                info = await asyncio.wait_for(self.js.consumer_info(stream, durable), 2.0)
            except Exception:  # not bound yet, or NATS is away: try again next time
                log.debug("consumer info failed", exc_info=True, extra={"consumer": durable})
                continue
            metrics.set_consumer_lag(self.service, durable, int(info.num_pending or 0),
                                     int(info.num_ack_pending or 0))

    @staticmethod
    async def retry(fn: Callable[[], Awaitable[Any]], stop: asyncio.Event) -> Any:
        delay = 0.2
        while True:
            try:
                return await fn()
            except Exception:
                if stop.is_set():
                    raise
                log.warning("NATS call failed; retrying", exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _bind(self, consumer: Consumer) -> Any:
        config = js_api.ConsumerConfig(
            durable_name=consumer.durable, ack_policy=js_api.AckPolicy.EXPLICIT,
            deliver_policy=js_api.DeliverPolicy.ALL, filter_subjects=list(consumer.subjects),
            max_deliver=consumer.max_deliver, ack_wait=60, max_ack_pending=10_000)
        await self.js.add_consumer(consumer.stream, config)
        return await self.js.pull_subscribe_bind(consumer.durable, stream=consumer.stream)

    async def _consume(self, consumer: Consumer, stop: asyncio.Event) -> None:
        sub = await self.retry(lambda: self._bind(consumer), stop)
        self.subscriptions.append(sub)
        while not stop.is_set():
            try:
                msgs = await sub.fetch(consumer.batch, timeout=1)
            except (NatsTimeout, TimeoutError):
                continue
            except Exception:
                log.warning("fetch failed", exc_info=True, extra={"consumer": consumer.durable})
                await asyncio.sleep(0.5)
                continue
            try:
                results = await handle_batch(self.db, self.tables, consumer, msgs, stop)
                metrics.count_events(self.service, consumer.durable, results)
            except Exception:
                # Stopping (or NATS failing): the unacked messages are redelivered later.
                log.exception("message handling failed", extra={"consumer": consumer.durable})
                await asyncio.sleep(0.5)

    async def _answer_export(self, msg: Any) -> None:
        assert self.export is not None
        try:
            req = ExportRequest(**json.loads(msg.data))
            part = await asyncio.to_thread(self.export, req)
            reply = {"service": self.service, "ok": True, "data": part}
        except Exception as exc:
            log.exception("export failed")
            reply = {"service": self.service, "ok": False, "error": type(exc).__name__}
        await msg.respond(json.dumps(reply, default=str).encode())


def run(worker: Worker, settings: ServiceSettings | None = None) -> None:
    """Run `worker` until SIGTERM or SIGINT. With the service's `settings` (a worker's `main`):
    JSON logs at its log level, and /metrics + /healthz on WORKER_METRICS_HOST/PORT."""
    if settings is not None:
        configure_logging(worker.service, settings.log_level)
        worker.metrics_address = settings.worker_metrics_address

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runner = asyncio.create_task(worker.run(stop))
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if runner in done:
            runner.result()  # surface a crash as a non-zero exit
            return
        try:
            await asyncio.wait_for(runner, 10)
        except TimeoutError:
            log.warning("worker did not stop within 10 s")

    asyncio.run(main())
