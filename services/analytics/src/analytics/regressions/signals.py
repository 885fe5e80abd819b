"""Crash signals the worker emits for alerting: `crash_spike_detected` and
`crash_free_rate_dropped`, from `session_minutes` (sessions and crashed sessions per start
minute, project-wide).

The rule (both compare the last hour with the 24 hours before it):
- window: sessions started in the last `WINDOW_MINUTES` (60) minutes up to now;
  baseline: those started in the 24 hours before the window.
- crash spike: at least `SPIKE_MIN_CRASHES` (10) crashed sessions in the window and at
  least `SPIKE_FACTOR` (3) times the baseline's crashed sessions per hour.
- crash-free rate dropped: at least `DROP_MIN_SESSIONS` (50) sessions in the window and
  `BASELINE_MIN_SESSIONS` (100) in the baseline, and the window's crash-free rate more than
  `DROP_POINTS` (5) points below the baseline's (exact rates).
- cooldown: a signal of one kind is emitted at most once per `COOLDOWN` (6 h) per project,
  so one incident signals once. The last emission time is kept in `crash_signals`; taking
  it is one conditional upsert, so two workers never both emit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Session

from bugnet_common.bus import subjects
from bugnet_common.bus.events import (
    CrashFreeRateDropped,
    CrashSpikeDetected,
    Event,
    payload,
    utcnow,
)
from bugnet_common.bus.outbox import add_event

from ..crashes import health
from ..models import BUS, Project
from .models import CrashSignal

SIGNALS: sa.Table = CrashSignal.__table__  # type: ignore[attr-defined]

WINDOW_MINUTES = 60
BASELINE = timedelta(hours=24)
SPIKE_MIN_CRASHES = 10
SPIKE_FACTOR = Decimal(3)
DROP_MIN_SESSIONS = 50
BASELINE_MIN_SESSIONS = 100
DROP_POINTS = Decimal(5)
COOLDOWN = timedelta(hours=6)


@dataclass(frozen=True)
class Figures:
    sessions: int
    crashed: int
    baseline_sessions: int
    baseline_crashed: int

    @property
    def baseline_crashed_per_window(self) -> Decimal:
        return Decimal(self.baseline_crashed) * WINDOW_MINUTES / Decimal(
            BASELINE.total_seconds() / 60)


def figures(session: Session, *, project_id: str, now: datetime) -> Figures:
    window_start = now - timedelta(minutes=WINDOW_MINUTES)
    row = session.execute(sa.text("""
        SELECT coalesce(sum(sessions) FILTER (WHERE minute > :window_start), 0),
               coalesce(sum(crashed) FILTER (WHERE minute > :window_start), 0),
               coalesce(sum(sessions) FILTER (WHERE minute <= :window_start), 0),
               coalesce(sum(crashed) FILTER (WHERE minute <= :window_start), 0)
        FROM session_minutes
        WHERE project_id = :project AND minute > :baseline_start AND minute <= :now"""),
        {"project": project_id, "window_start": window_start,
         "baseline_start": window_start - BASELINE, "now": now}).one()
    return Figures(*(int(v) for v in row))


def _take(session: Session, project_id: str, kind: str, now: datetime) -> bool:
    """Claim the right to emit `kind` for the project now (False within the cooldown)."""
    claimed = session.execute(pg_insert(SIGNALS).values(
        project_id=project_id, kind=kind, signaled_at=now,
    ).on_conflict_do_update(index_elements=[SIGNALS.c.project_id, SIGNALS.c.kind],
                            set_={"signaled_at": now},
                            where=SIGNALS.c.signaled_at <= now - COOLDOWN)
        .returning(SIGNALS.c.kind)).first()
    return claimed is not None


def check_signals(*, session: Session, project: Project,
                  now: datetime | None = None) -> list[Event]:
    """Emit the project's due crash signals (committed); the events emitted."""
    now = now or utcnow()
    f = figures(session, project_id=project.id, now=now)
    emitted: list[Event] = []
    stamp = health.iso(now) or ""
    per_window = f.baseline_crashed_per_window
    if (f.crashed >= SPIKE_MIN_CRASHES and Decimal(f.crashed) >= SPIKE_FACTOR * per_window
            and _take(session, project.id, "crash_spike", now)):
        emitted.append(add_event(session, BUS, Event(
            type=subjects.CRASH_SPIKE_DETECTED, source="analytics", data=payload(
                CrashSpikeDetected(project_id=project.id, project_slug=project.slug,
                                   window_minutes=WINDOW_MINUTES, sessions=f.sessions,
                                   crashed_sessions=f.crashed,
                                   baseline_crashed=float(per_window), detected_at=stamp)))))
    rate = health.exact_crash_free_rate(f.sessions, f.crashed)
    before = health.exact_crash_free_rate(f.baseline_sessions, f.baseline_crashed)
    if (f.sessions >= DROP_MIN_SESSIONS and f.baseline_sessions >= BASELINE_MIN_SESSIONS
            and rate is not None and before is not None and before - rate > DROP_POINTS
            and _take(session, project.id, "crash_free_rate_dropped", now)):
        emitted.append(add_event(session, BUS, Event(
            type=subjects.CRASH_FREE_RATE_DROPPED, source="analytics", data=payload(
                CrashFreeRateDropped(project_id=project.id, project_slug=project.slug,
                                     window_minutes=WINDOW_MINUTES, sessions=f.sessions,
                                     crashed_sessions=f.crashed, crash_free_rate=float(rate),
                                     previous_rate=float(before), game_version=None,
                                     detected_at=stamp)))))
    session.commit()
    return emitted

