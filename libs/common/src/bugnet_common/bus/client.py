"""The bus inside an api process: one daemon thread with its own asyncio loop and NATS
connection. Request handlers never touch NATS directly; they call this thread's blocking
methods (revocation lookups are plain memory reads, the export gather waits on a deadline).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

from .nats_io import close_quietly, connect, ensure_kv, run_loop_to_end

log = logging.getLogger(__name__)

REVOCATION_TTL_SECONDS = 8 * 24 * 3600  # longer than any token lives


class RevocationSet:
    """Session ids revoked anywhere, mirrored from the KV bucket by a watcher."""

    def __init__(self) -> None:
        self._revoked: dict[str, float] = {}
        self.synced = threading.Event()

    def add(self, session_id: str, expires_at: float) -> None:
        self._revoked[session_id] = expires_at

    def discard(self, session_id: str) -> None:
        self._revoked.pop(session_id, None)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._revoked

    def __len__(self) -> int:
        return len(self._revoked)

    def prune(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for sid, exp in list(self._revoked.items()):
            if exp < now:
                self._revoked.pop(sid, None)


class BusThread:
    def __init__(self, url: str, name: str, *, revocation_bucket: str | None = None) -> None:
        self.url = url
        self.name = name
        self.revocation_bucket = revocation_bucket
        self.revocations = RevocationSet()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._nc: Any = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"bus-{name}", daemon=True)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> BusThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    def wait_connected(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        run_loop_to_end(self._loop, self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            self._nc = await connect(self.url, self.name, stop=self._stop)
        except Exception:
            return
        self._ready.set()
        tasks = []
        if self.revocation_bucket:
            tasks.append(asyncio.create_task(self._watch_revocations()))
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await close_quietly(self._nc)

    # ---- revocation ------------------------------------------------------------------------
    async def _watch_revocations(self) -> None:
        assert self.revocation_bucket
        js = self._nc.jetstream()
        while True:
            try:
                kv = await ensure_kv(js, self.revocation_bucket, ttl_seconds=REVOCATION_TTL_SECONDS)
                watcher = await kv.watchall()
                async for entry in watcher:
                    if entry is None:
                        self.revocations.synced.set()
                        continue
                    if entry.operation in ("DEL", "PURGE") or not entry.value:
                        self.revocations.discard(entry.key)
                        continue
                    try:
                        expires_at = float(entry.value)
                    except ValueError:
                        expires_at = time.time() + REVOCATION_TTL_SECONDS
                    self.revocations.add(entry.key, expires_at)
                    if len(self.revocations) % 1024 == 0:
                        self.revocations.prune()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("revocation watch failed; restarting", exc_info=True)
                await asyncio.sleep(1)

    # ---- request/reply ---------------------------------------------------------------------
    def gather(self, subject: str, payload: dict[str, Any], *, expected: set[str],
               timeout: float) -> dict[str, dict[str, Any]]:
        """Publish a request and collect one reply per expected service until the deadline."""
        if not self.connected:
            return {}
        future = asyncio.run_coroutine_threadsafe(
            self._gather(subject, json.dumps(payload).encode(), expected, timeout), self._loop)
        return future.result(timeout + 5)

    async def _gather(self, subject: str, data: bytes, expected: set[str],
                      timeout: float) -> dict[str, dict[str, Any]]:
        replies: dict[str, dict[str, Any]] = {}
        complete = asyncio.Event()

        async def on_reply(msg: Any) -> None:
            try:
                doc = json.loads(msg.data)
                replies[str(doc["service"])] = doc
            except (ValueError, KeyError, TypeError):
                log.warning("malformed export reply")
                return
            if expected <= replies.keys():
                complete.set()

        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox, cb=on_reply)
        try:
            await self._nc.publish(subject, data, reply=inbox)
            await asyncio.wait_for(complete.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            await sub.unsubscribe()
        return replies
