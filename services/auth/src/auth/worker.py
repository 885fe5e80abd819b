"""`python -m auth.worker`: outbox relay, the revocation mirror, auth's export part and the
pruning of the sign-in throttle's finished windows.

Revocations reach every service through the `revoked_sessions` KV bucket: this worker copies
each `session_revoked` event into it (a put is idempotent, so redelivery is harmless), and
every api process watches the bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from nats.errors import TimeoutError as NatsTimeout
from nats.js import api as js_api

from bugnet_common.bus import subjects
from bugnet_common.bus.client import REVOCATION_TTL_SECONDS
from bugnet_common.bus.events import Event
from bugnet_common.bus.nats_io import ensure_kv
from bugnet_common.bus.worker import Worker, run
from bugnet_common.db import Database

from . import service
from .models import BUS
from .settings import AuthSettings
from .throttle import LoginThrottle

log = logging.getLogger(__name__)
DURABLE = "auth-revocations"


async def mirror_revocations(worker: Worker, stop: asyncio.Event, *, bucket: str) -> None:
    js = worker.js
    kv = await worker.retry(lambda: ensure_kv(js, bucket, ttl_seconds=REVOCATION_TTL_SECONDS),
                             stop)

    async def bind() -> Any:
        await js.add_consumer("AUTH", js_api.ConsumerConfig(
            durable_name=DURABLE, ack_policy=js_api.AckPolicy.EXPLICIT,
            filter_subject=subjects.SESSION_REVOKED, max_deliver=-1, ack_wait=30))
        return await js.pull_subscribe_bind(DURABLE, stream="AUTH")

    sub = await worker.retry(bind, stop)
    worker.subscriptions.append(sub)
    while not stop.is_set():
        try:
            msgs = await sub.fetch(256, timeout=1)
        except (NatsTimeout, TimeoutError):
            continue
        except Exception:
            log.warning("revocation fetch failed", exc_info=True)
            await asyncio.sleep(0.5)
            continue
        for msg in msgs:
            try:
                data = Event.from_json(msg.data).data
                await kv.put(str(data["session_id"]), str(data["expires_at"]).encode())
            except (ValueError, KeyError, json.JSONDecodeError):
                log.error("undecodable session_revoked event; dropped")
                await msg.term()
                continue
            except Exception:
                log.warning("KV put failed; will retry", exc_info=True)
                await msg.nak(delay=1)
                continue
            await msg.ack()


async def prune_login_failures(worker: Worker, stop: asyncio.Event, *, throttle: LoginThrottle,
                               every: float) -> None:
    """Delete the sign-in throttle's rows whose window is over, every `every` seconds; a
    failure (the database away) is logged and retried next time."""

    def prune() -> int:
        with worker.db.session() as session:
            return service.prune_login_failures(session=session, throttle=throttle)

    while not stop.is_set():
        try:
            pruned = await asyncio.to_thread(prune)
            if pruned:
                log.info("pruned login throttle rows", extra={"rows": pruned})
        except Exception:
            log.warning("pruning the login throttle failed; will retry", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)


def main() -> None:
    settings = AuthSettings()
    db = Database(settings.database_url.get_secret_value(), pool_size=2)

    async def revocations(worker: Worker, stop: asyncio.Event) -> None:
        await mirror_revocations(worker, stop, bucket=settings.revocation_bucket)

    async def prune(worker: Worker, stop: asyncio.Event) -> None:
        await prune_login_failures(worker, stop, throttle=LoginThrottle.of(settings),
                                   every=settings.login_failures_prune_seconds)

    run(Worker(service="auth", nats_url=settings.nats_url, db=db, tables=BUS,
               tasks=[revocations, prune], lag_watch=[("AUTH", DURABLE)]), settings)


if __name__ == "__main__":
    main()
