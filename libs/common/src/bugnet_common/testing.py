"""Helpers for tests that run real workers and databases; imported by tests only."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from .bus.nats_io import run_loop_to_end
from .bus.worker import Worker


@contextmanager
def worker_thread(worker: Worker, *, startup_timeout: float = 10.0) -> Iterator[Worker]:
    """Run `worker` on its own event loop in a thread until the block exits."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started = threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        started.set()
        await worker.run(stop)

    def target() -> None:
        asyncio.set_event_loop(loop)
        try:
            run_loop_to_end(loop, main())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name=f"worker-{worker.service}", daemon=True)
    thread.start()
    if not (started.wait(startup_timeout) and worker.ready.wait(startup_timeout)):
        loop.call_soon_threadsafe(stop.set)
        raise RuntimeError(f"worker {worker.service} did not become ready")
    try:
        yield worker
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        if failure and not isinstance(failure[0], asyncio.CancelledError):
            raise failure[0]


def truncate_all(engine: sa.Engine, metadata: sa.MetaData) -> None:
    """Empty every table of `metadata` (a clean database for the next test)."""
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    if names:
        with engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
