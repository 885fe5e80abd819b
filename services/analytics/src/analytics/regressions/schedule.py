"""The worker's schedule for regressions and crash signals: every `SIGNAL_INTERVAL` the crash
signals of every project, every `DETECT_INTERVAL` regression detection of every project, each
project in its own transaction (one failing project does not stop the others)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from typing import Any

from sqlmodel import select

from bugnet_common.bus.worker import Task
from bugnet_common.db import Database

from ..models import Project
from . import service, signals

log = logging.getLogger(__name__)

SIGNAL_INTERVAL = 60.0
DETECT_INTERVAL = 300.0


def run_once(db: Database, *, regressions: bool = True, crash_signals: bool = True,
             now: datetime | None = None) -> dict[str, int]:
    """One pass over every project; how many regressions and signals were new."""
    with db.session() as session:
        projects = list(session.exec(select(Project)).all())
    counts = {"projects": len(projects), "regressions": 0, "signals": 0}
    for project in projects:
        try:
            with db.session() as session:
                if regressions:
                    counts["regressions"] += len(service.detect(session=session,
                                                                project=project, now=now))
                if crash_signals:
                    counts["signals"] += len(signals.check_signals(session=session,
                                                                   project=project, now=now))
        except Exception:
            log.exception("regression detection failed", extra={"project_id": project.id})
    return counts


def detection_schedule(_settings: Any, db: Database, *, signal_interval: float = SIGNAL_INTERVAL,
                       detect_interval: float = DETECT_INTERVAL) -> Task:
    """The worker task: signals and detection on their intervals until the worker stops."""

    async def task(_worker: Any, stop: asyncio.Event) -> None:
        next_detect = 0.0
        while not stop.is_set():
            detect = time.monotonic() >= next_detect
            try:
                counts = await asyncio.to_thread(run_once, db, regressions=detect)
                if counts["regressions"] or counts["signals"]:
                    log.info("regressions and signals", extra=counts)
            except Exception:
                log.exception("regression schedule failed")
            if detect:
                next_detect = time.monotonic() + detect_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), signal_interval)

    return task
