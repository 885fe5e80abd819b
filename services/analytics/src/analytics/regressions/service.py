"""Regressions (spec §6, "decided"): three kinds, each reported once.

- `recurrence`: a fixed crash that occurs again in a newer version. The bugs service decides
  it (it knows the version a bug was fixed in) and says so with `bug_regressed`; the
  `analytics-regressions` consumer (`handlers.py`) records it with the version that brought
  it back (the newest version among its reports up to then) and the version it was last seen
  in before (`previous_version`).
- `crash_rate`: a release whose crash-free rate is lower than the previous release's by more
  than 1 point, exact rates, at least 100 sessions in each. Rates are over each release's
  whole life (all of its sessions in `session_daily`); "previous" is the release just before
  it among every release with sessions (`health.release_key` order).
- `frame_time`: a release whose p50 frame time (nearest rank, all of its snapshots) is at
  least 20 % above the previous release's, at least 50 snapshots in each; "previous" is the
  release just before it among those with snapshots.

`detect` runs the last two for one project (the worker's schedule and
`POST …/regressions/detect`). Every regression has a dedupe key unique per project
(`models.Regression`); inserting is `ON CONFLICT DO NOTHING`, and only a row that was really
inserted gets its `regression_detected` event (outbox, same transaction) — so concurrent or
repeated runs never report one twice, and a dismissed regression is not raised again.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Session

from bugnet_common import errors
from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event, RegressionDetected, isoformat, payload, utcnow
from bugnet_common.bus.outbox import add_event
from bugnet_common.web import Page

from ..crashes import health
from ..models import BUS, Project
from .models import Regression
from .schemas import RegressionKind, RegressionOut, RegressionStatus

REGRESSIONS: sa.Table = Regression.__table__  # type: ignore[attr-defined]

CRASH_RATE_MIN_SESSIONS = 100
CRASH_RATE_MIN_DROP = Decimal(1)  # points; the drop must be larger than this
FRAME_TIME_MIN_SNAPSHOTS = 50
FRAME_TIME_WORSE = Decimal("1.2")  # p50 at least 20 % above the previous release's


def regression_out(r: Regression) -> RegressionOut:
    return {"id": r.id, "kind": cast(RegressionKind, r.kind), "version": r.version,
            "previous_version": r.previous_version, "bug_id": r.bug_id, "details": r.details,
            "status": cast(RegressionStatus, r.status), "detected_at": isoformat(r.detected_at),
            "updated_at": isoformat(r.updated_at)}


@dataclass(frozen=True)
class Found:
    """A regression as detection sees it, before it is recorded."""

    kind: str
    version: str | None
    previous_version: str | None
    bug_id: str | None
    details: dict[str, Any]
    key: str


def record(session: Session, *, project_id: str, project_slug: str, found: Found,
           now: datetime | None = None) -> Regression | None:
    """Store `found` unless the project has it already; the new row (with its
    `regression_detected` event in the outbox) or None."""
    now = now or utcnow()
    reg_id = str(uuid.uuid4())
    inserted = session.execute(pg_insert(REGRESSIONS).values(
        id=reg_id, project_id=project_id, kind=found.kind, version=found.version,
        previous_version=found.previous_version, bug_id=found.bug_id, details=found.details,
        status="open", dedupe_key=found.key, detected_at=now, updated_at=now,
    ).on_conflict_do_nothing(constraint="uq_regressions_project_key")
        .returning(REGRESSIONS.c.id)).first()
    if inserted is None:
        return None
    regression = Regression(id=reg_id, project_id=project_id, kind=found.kind,
                            version=found.version, previous_version=found.previous_version,
                            bug_id=found.bug_id, details=found.details, status="open",
                            dedupe_key=found.key, detected_at=now, updated_at=now)
    add_event(session, BUS, Event(type=subjects.REGRESSION_DETECTED, source="analytics",
                                  data=payload(RegressionDetected(
                                      regression_id=reg_id, project_id=project_id,
                                      project_slug=project_slug, kind=found.kind,
                                      version=found.version,
                                      previous_version=found.previous_version,
                                      bug_id=found.bug_id, details=found.details,
                                      detected_at=health.iso(now) or ""))))
    return regression


def crash_rate_regressions(session: Session, *, project_id: str) -> list[Found]:
    """Releases whose whole-life crash-free rate fell more than 1 point below the previous
    release's, at least 100 sessions in each."""
    rows = session.execute(sa.text("""
        SELECT game_version, sum(sessions), sum(crashed), min(first_started_at)
        FROM session_daily WHERE project_id = :project AND game_version <> ''
        GROUP BY game_version"""), {"project": project_id}).all()
    figures = {r[0]: (int(r[1]), int(r[2])) for r in rows}
    ordered = health.newest_first((r[0], r[3]) for r in rows)
    found = []
    for version, previous in itertools.pairwise(ordered):
        (sessions, crashed), (prev_sessions, prev_crashed) = figures[version], figures[previous]
        if sessions < CRASH_RATE_MIN_SESSIONS or prev_sessions < CRASH_RATE_MIN_SESSIONS:
            continue
        rate = health.exact_crash_free_rate(sessions, crashed)
        prev_rate = health.exact_crash_free_rate(prev_sessions, prev_crashed)
        assert rate is not None and prev_rate is not None
        if prev_rate - rate > CRASH_RATE_MIN_DROP:
            found.append(Found(
                kind="crash_rate", version=version, previous_version=previous, bug_id=None,
                details={"crash_free_rate": health.two_decimals(rate),
                         "previous_crash_free_rate": health.two_decimals(prev_rate),
                         "drop": health.two_decimals(prev_rate - rate),
                         "sessions": sessions, "crashed": crashed,
                         "previous_sessions": prev_sessions, "previous_crashed": prev_crashed},
                key=f"crash_rate:{version}:{previous}"))
    return found


def frame_time_regressions(session: Session, *, project_id: str) -> list[Found]:
    """Releases whose p50 frame time is at least 20 % above the previous release's, at least
    50 snapshots in each."""
    rows = session.execute(sa.text("""
        SELECT game_version, count(*),
               percentile_disc(0.5) WITHIN GROUP (ORDER BY frame_time_ms), min(created_at)
        FROM perf_snapshots WHERE project_id = :project AND game_version <> ''
        GROUP BY game_version"""), {"project": project_id}).all()
    figures = {r[0]: (int(r[1]), Decimal(str(r[2]))) for r in rows}
    ordered = health.newest_first((r[0], r[3]) for r in rows)
    found = []
    for version, previous in itertools.pairwise(ordered):
        (count, p50), (prev_count, prev_p50) = figures[version], figures[previous]
        if count < FRAME_TIME_MIN_SNAPSHOTS or prev_count < FRAME_TIME_MIN_SNAPSHOTS:
            continue
        if p50 >= prev_p50 * FRAME_TIME_WORSE and p50 > prev_p50:
            found.append(Found(
                kind="frame_time", version=version, previous_version=previous, bug_id=None,
                details={"p50_frame_time_ms": float(p50),
                         "previous_p50_frame_time_ms": float(prev_p50),
                         "increase_percent": health.percent(p50 - prev_p50, prev_p50),
                         "snapshots": count, "previous_snapshots": prev_count},
                key=f"frame_time:{version}:{previous}"))
    return found


def detect(*, session: Session, project: Project, now: datetime | None = None) -> list[Regression]:
    """Run crash-rate and frame-time detection for `project` now; the regressions that are
    new (committed, with their events)."""
    found = (crash_rate_regressions(session, project_id=project.id)
             + frame_time_regressions(session, project_id=project.id))
    new = [r for f in found
           if (r := record(session, project_id=project.id, project_slug=project.slug, found=f,
                           now=now)) is not None]
    session.commit()
    return new


def list_regressions(*, session: Session, project: Project, status: str | None,
                     page: Page) -> tuple[list[Regression], int]:
    """The project's regressions, newest first, optionally of one status."""
    where = [REGRESSIONS.c.project_id == project.id]
    if status is not None:
        where.append(REGRESSIONS.c.status == status)
    total = int(session.execute(sa.select(sa.func.count()).select_from(REGRESSIONS)
                                .where(*where)).scalar_one())
    rows = session.execute(sa.select(Regression).where(*where)
                           .order_by(REGRESSIONS.c.detected_at.desc(), REGRESSIONS.c.id.desc())
                           .offset(page.offset).limit(page.limit)).scalars().all()
    return list(rows), total


def find_regression(session: Session, project: Project, regression_id: str) -> Regression:
    try:
        regression_id = str(uuid.UUID(regression_id))
    except ValueError:
        raise errors.NotFound("Regression not found") from None
    regression = session.get(Regression, regression_id)
    if regression is None or regression.project_id != project.id:
        raise errors.NotFound("Regression not found")
    return regression


def set_status(*, session: Session, project: Project, regression_id: str,
               status: str) -> Regression:
    """Confirm or dismiss a regression (setting the status it has is a no-op)."""
    regression = find_regression(session, project, regression_id)
    if regression.status != status:
        regression.status = status
        regression.updated_at = utcnow()
        session.add(regression)
        session.commit()
        session.refresh(regression)
    return regression
