"""Connecting to NATS and declaring what every service relies on (streams, KV buckets)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import BadRequestError, BucketNotFoundError
from nats.js.kv import KeyValue

from .subjects import STREAMS

log = logging.getLogger(__name__)

STREAM_MAX_AGE_SECONDS = 30 * 24 * 3600
DUPLICATE_WINDOW_SECONDS = 120


async def connect(url: str, name: str, *, stop: asyncio.Event | None = None) -> Client:
    """Connect, retrying until NATS answers (or `stop` is set); reconnects forever after."""
    delay = 0.2
    while True:
        try:
            return await nats.connect(url, name=name, allow_reconnect=True,
                                      max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                      connect_timeout=2)
        except Exception as exc:
            if stop is not None and stop.is_set():
                raise
            log.warning("NATS not reachable; retrying", extra={"url": url, "error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def ensure_streams(js: JetStreamContext) -> None:
    """Declare every producer's stream; idempotent, so any worker may start first."""
    for stream in STREAMS:
        config = js_api.StreamConfig(
            name=stream.name, subjects=list(stream.subjects),
            storage=js_api.StorageType.FILE, retention=js_api.RetentionPolicy.LIMITS,
            max_age=STREAM_MAX_AGE_SECONDS, duplicate_window=DUPLICATE_WINDOW_SECONDS)
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)


async def ensure_kv(js: JetStreamContext, bucket: str, *, ttl_seconds: float | None = None) -> KeyValue:
    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        pass
    try:
        return await js.create_key_value(js_api.KeyValueConfig(
            bucket=bucket, ttl=ttl_seconds, storage=js_api.StorageType.FILE, history=1))
    except BadRequestError:
        return await js.key_value(bucket)  # created concurrently by another process


async def close_quietly(nc: Any) -> None:
    try:
        await asyncio.wait_for(nc.close(), 5)
    except Exception:
        log.debug("NATS close failed", exc_info=True)


def run_loop_to_end(loop: asyncio.AbstractEventLoop, main: Awaitable[Any]) -> None:
    """Run `main` on `loop`, then cancel what the NATS client left behind and close the loop."""
    try:
        loop.run_until_complete(main)
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
