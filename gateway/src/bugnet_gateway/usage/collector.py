"""The collector process: a gRPC access-log server for Envoy plus a publisher to JetStream.

Invariants:
- Every HTTP access-log entry Envoy sends (one per request, served or refused) is counted
  once. Nothing about a request is logged; the ``X-API-Key`` header is hashed in memory.
- Counts leave in ``usage_counted`` events whose envelope id (also the ``Nats-Msg-Id``) is
  ``uuid5(instance, sequence)``; ``instance`` includes a random boot id, so a restarted
  collector never reuses an id.
- A sealed batch is immutable: it is re-sent with the same id until JetStream acks it
  (JetStream and the consumers' inboxes drop the duplicates of a publish whose ack was
  lost). Requests counted meanwhile accumulate (merged) in the counter for the next batch,
  so NATS being down loses nothing while the collector lives; only one sealed batch waits at
  a time, so memory stays bounded.
- On SIGTERM/SIGINT the gRPC server stops taking streams, then one last flush runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc

from bugnet_common.bus.events import Event, UsageCounted, isoformat, payload, utcnow
from bugnet_common.bus.nats_io import close_quietly, connect, ensure_streams
from bugnet_common.bus.subjects import USAGE_COUNTED
from bugnet_common.logs import configure_logging
from bugnet_gateway.usage import als
from bugnet_gateway.usage.counter import (
    DEFAULT_MAX_KEYS,
    UsageCounter,
    UsageKey,
    chunks,
    to_usage_counts,
)

log = logging.getLogger("bugnet_gateway.usage")

SOURCE = "gateway"
ID_NAMESPACE = uuid.UUID("5b0f4c53-6f5e-4c1b-9a53-7573616765a1")  # fixed: ids must be stable


@dataclass(frozen=True)
class CollectorSettings:
    port: int
    host: str = "127.0.0.1"
    nats_url: str = "nats://127.0.0.1:4222"
    flush_seconds: float = 2.0
    publish_timeout: float = 5.0
    name: str = ""  # default: <hostname>:<port>
    max_keys: int = DEFAULT_MAX_KEYS
    batch_size: int = 1000  # counts per event (keeps an event well below NATS' 1 MiB)

    def __post_init__(self) -> None:
        if self.flush_seconds <= 0:
            raise ValueError("flush_seconds must be positive")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")


def event_id(instance: str, sequence: int) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"{instance}/{sequence}"))


@dataclass
class Batch:
    event: Event
    requests: int


@dataclass
class Stats:
    entries: int = 0  # access-log entries received
    counted: int = 0  # requests counted
    published_events: int = 0
    published_requests: int = 0
    failed_publishes: int = 0
    streams: int = 0  # gRPC streams opened by Envoy


@dataclass
class Collector:
    settings: CollectorSettings
    counter: UsageCounter = field(init=False)
    stats: Stats = field(default_factory=Stats)
    instance: str = field(init=False)
    sequence: int = 0
    pending: list[Batch] = field(default_factory=list)  # sealed, not yet acked, in order
    window_start: str = field(default_factory=lambda: isoformat(utcnow()))
    bound_port: int = 0
    connected: bool = False  # reached NATS once (then nats-py reconnects by itself)
    serving: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.counter = UsageCounter(max_keys=self.settings.max_keys)
        name = self.settings.name or f"{socket.gethostname()}:{self.settings.port}"
        self.instance = f"{name}/{uuid.uuid4().hex[:12]}"

    # ---- the ALS side -------------------------------------------------------------------

    def record(self, message: Any) -> int:
        """Counts the HTTP entries of one StreamAccessLogsMessage; returns how many."""
        counted = 0
        for entry in message.http_logs.log_entry:
            self.stats.entries += 1
            request = als.to_request(entry)
            if request is None:
                continue
            self.counter.add(request)
            counted += 1
        self.stats.counted += counted
        return counted

    async def stream_access_logs(self, requests: Any, context: Any) -> Any:
        self.stats.streams += 1
        async for message in requests:
            try:
                self.record(message)
            except Exception:
                # One bad entry must not end Envoy's stream (it would drop what it buffered).
                log.exception("could not count an access-log message")
        return als.StreamAccessLogsResponse()

    def grpc_server(self) -> Any:
        handler = grpc.method_handlers_generic_handler(
            als.SERVICE_NAME,
            {
                als.METHOD_NAME: grpc.stream_unary_rpc_method_handler(
                    self.stream_access_logs,
                    request_deserializer=als.StreamAccessLogsMessage.FromString,
                    response_serializer=lambda response: response.SerializeToString(),
                )
            },
        )
        # No SO_REUSEPORT: a second collector on the same port must fail, not share it.
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        server.add_generic_rpc_handlers((handler,))
        address = f"{self.settings.host}:{self.settings.port}"
        try:
            self.bound_port = server.add_insecure_port(address)
        except RuntimeError as exc:  # grpc's "Failed to bind"
            raise OSError(f"cannot listen on {address}: is another process using it?") from exc
        if not self.bound_port:
            raise OSError(f"cannot listen on {address}")
        return server

    # ---- the bus side -------------------------------------------------------------------

    def seal(self) -> list[Batch]:
        """Moves the counter's contents into new sealed batches (none when it is empty)."""
        if self.pending or not self.counter:
            return []
        counts = self.counter.take()
        window_end = isoformat(utcnow())
        sealed = [self._batch(part, window_end) for part in chunks(counts, self.settings.batch_size)]
        self.window_start = window_end
        self.pending.extend(sealed)
        return sealed

    def _batch(self, counts: Mapping[UsageKey, int], window_end: str) -> Batch:
        self.sequence += 1
        data = UsageCounted(
            instance=self.instance,
            sequence=self.sequence,
            window_start=self.window_start,
            window_end=window_end,
            counts=to_usage_counts(counts),
        )
        event = Event(
            type=USAGE_COUNTED,
            source=SOURCE,
            data=payload(data),
            id=event_id(self.instance, self.sequence),
        )
        return Batch(event=event, requests=sum(counts.values()))

    async def flush(self, js: Any) -> bool:
        """Seals what was counted (unless a batch still waits) and sends every waiting batch
        in order; True when nothing is left waiting."""
        self.seal()
        while self.pending:
            batch = self.pending[0]
            try:
                await js.publish(
                    USAGE_COUNTED,
                    batch.event.to_json(),
                    timeout=self.settings.publish_timeout,
                    headers={"Nats-Msg-Id": batch.event.id},
                )
            except Exception as exc:
                self.stats.failed_publishes += 1
                log.warning(
                    "usage counts not published yet; retrying",
                    extra={
                        "error": f"{type(exc).__name__}: {exc}",
                        "sequence": batch.event.data["sequence"],
                        "waiting_requests": self.unpublished,
                    },
                )
                return False
            self.pending.pop(0)
            self.stats.published_events += 1
            self.stats.published_requests += batch.requests
        return True

    async def publish_loop(self, stop: asyncio.Event) -> None:
        try:
            nc = await connect(self.settings.nats_url, "gateway-usage", stop=stop)
        except Exception:
            return  # stopped before NATS ever answered
        self.connected = True
        try:
            js = nc.jetstream()
            while not stop.is_set():
                try:
                    await ensure_streams(js)
                    break
                except Exception as exc:
                    log.warning("cannot declare the streams yet", extra={"error": str(exc)})
                    await _sleep_or_stop(stop, 1.0)
            while not stop.is_set():
                await _sleep_or_stop(stop, self.settings.flush_seconds)
                await self.flush(js)
            # The gRPC server has stopped by now (see run): one last flush of what it got.
            await self._final_flush(js)
        finally:
            await close_quietly(nc)

    async def _final_flush(self, js: Any) -> None:
        deadline = time.monotonic() + 2 * self.settings.publish_timeout
        while time.monotonic() < deadline:
            if await self.flush(js):
                return
            await asyncio.sleep(0.2)

    @property
    def unpublished(self) -> int:
        """Requests counted but not yet acked by JetStream."""
        return sum(b.requests for b in self.pending) + self.counter.total

    # ---- the process --------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        server = self.grpc_server()
        await server.start()
        self.serving.set()
        log.info(
            "usage collector listening",
            extra={"address": f"{self.settings.host}:{self.bound_port}", "instance": self.instance},
        )
        publish_stop = asyncio.Event()
        publisher = asyncio.create_task(self.publish_loop(publish_stop))
        try:
            await stop.wait()
        finally:
            # Envoy flushes its buffered entries when its stream ends; give it a moment.
            await server.stop(grace=1.0)
            publish_stop.set()
            # Bounded: the final flush has its own deadline, and a connect to a NATS that
            # never answered is abandoned (nats-py retries its first connect forever).
            grace = 3 * self.settings.publish_timeout if self.connected else 0.5
            done, _ = await asyncio.wait({publisher}, timeout=grace)
            if not done:
                publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
            if self.unpublished:
                log.error("stopping with unpublished usage counts",
                          extra={"requests": self.unpublished})
            log.info(
                "usage collector stopped",
                extra={
                    "counted": self.stats.counted,
                    "published_requests": self.stats.published_requests,
                    "published_events": self.stats.published_events,
                },
            )


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def _env(name: str, default: str) -> str:
    return os.environ.get(f"BUGNET_USAGE_{name}", default)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bugnet_gateway.usage",
        description="Count every request Envoy reports over gRPC and publish the counts to NATS.",
    )
    parser.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(_env("PORT", "0") or 0))
    parser.add_argument("--nats-url", default=_env("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument(
        "--flush-seconds", type=float, default=float(_env("FLUSH_SECONDS", "2")),
        help="how often counts are published",
    )
    parser.add_argument("--name", default=_env("NAME", ""), help="instance name in events")
    parser.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error("--port (or BUGNET_USAGE_PORT) is required")
    try:
        settings = CollectorSettings(
            host=args.host,
            port=args.port,
            nats_url=args.nats_url,
            flush_seconds=args.flush_seconds,
            name=args.name,
        )
    except ValueError as exc:
        parser.error(str(exc))
    configure_logging("gateway-usage", args.log_level)

    async def amain() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Collector(settings).run(stop)

    try:
        asyncio.run(amain())
    except OSError as exc:
        log.error("usage collector cannot start", extra={"error": str(exc)})
        return 1
    return 0
