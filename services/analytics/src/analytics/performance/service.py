"""Performance over a window (spec §6), from `perf_snapshots`.

- Per (version, platform): snapshot count and avg / p50 / p95 of fps, frame time and memory.
  Percentiles are by nearest rank (the value at rank ceil(p x n) of the sorted values, what
  PostgreSQL's `percentile_disc` computes); averages have two decimals. Newest release first
  (`health.release_key`), then platform by name. Unknown ('') versions show as `version: null`
  after every known one, unknown platforms as "unknown".
- Scenes: per scene with a load time, count and avg / p50 / p95 of the load time in ms;
  most snapshots first, then by name.
- A bug's snapshots: those the SDK sent with that bug's id (newest first, paginated).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import Field
from sqlmodel import Session
from typing_extensions import TypedDict

from bugnet_common import errors
from bugnet_common.bus.events import isoformat
from bugnet_common.openapi import Timestamp, Uuid
from bugnet_common.web import Page

from ..crashes import health
from ..crashes.health import Window
from ..models import Bug, PerfSnapshot, Project

METRICS = ("fps", "frame_time_ms", "memory_used_mb")


class StatsOut(TypedDict):
    avg: float | None
    p50: float | None
    p95: float | None


class PerfGroupOut(TypedDict):
    version: Annotated[str | None, Field(description="null for snapshots without a version.")]
    platform: Annotated[str, Field(description="Normalized platform name, or `unknown`.")]
    count: Annotated[int, Field(description="Snapshots in the window.")]
    fps: StatsOut
    frame_time_ms: StatsOut
    memory_used_mb: StatsOut


class SceneLoadOut(TypedDict):
    scene: str
    count: int
    avg_ms: float | None
    p50_ms: float | None
    p95_ms: float | None


class PerformanceOut(TypedDict):
    days: int
    versions: Annotated[list[PerfGroupOut], Field(
        description="Per version and platform, newest version first.")]
    scenes: Annotated[list[SceneLoadOut], Field(
        description="Scene load times, most snapshots first.")]


class PerfSnapshotOut(TypedDict):
    id: Uuid
    bug_id: Uuid | None
    created_at: Timestamp
    fps: float
    frame_time_ms: float
    memory_used_mb: float
    platform: str | None
    game_version: str | None
    scene: str | None
    scene_load_ms: float | None
    custom_metrics: dict[str, Any]


def _stats(avg: Any, p50: Any, p95: Any) -> StatsOut:
    return {"avg": health.two_decimals(avg), "p50": health.two_decimals(p50),
            "p95": health.two_decimals(p95)}


def _version_sort(row: PerfGroupOut, first_seen: datetime) -> tuple[Any, ...]:
    version = row["version"]
    return (0, ()) if version is None else (1, health.release_key(version, first_seen))


def performance(*, session: Session, project: Project, win: Window) -> PerformanceOut:
    """`GET …/analytics/performance`: per version and platform, and scene load times."""
    params = {"project": project.id, "start": win.start_at, "end": win.end_at}
    # One sort per metric and group: both percentiles from one ordered-set aggregate.
    aggregates = ", ".join(
        f"avg({m}), percentile_disc(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY {m})"
        for m in METRICS)
    rows = session.execute(sa.text(f"""
        SELECT game_version, platform, count(*), min(created_at), {aggregates}
        FROM perf_snapshots
        WHERE project_id = :project AND created_at >= :start AND created_at < :end
        GROUP BY game_version, platform"""), params).all()
    versions: list[tuple[PerfGroupOut, datetime]] = []
    for r in rows:
        fps, frame_time_ms, memory_used_mb = (
            _stats(r[4 + 2 * i], *r[5 + 2 * i]) for i in range(len(METRICS)))
        item: PerfGroupOut = {"version": r[0] or None, "platform": health.platform_name(r[1]),
                              "count": int(r[2]), "fps": fps, "frame_time_ms": frame_time_ms,
                              "memory_used_mb": memory_used_mb}
        versions.append((item, r[3]))
    versions.sort(key=lambda x: x[0]["platform"])
    versions.sort(key=lambda x: _version_sort(*x), reverse=True)
    scenes = session.execute(sa.text("""
        SELECT scene, count(*), avg(scene_load_ms),
               percentile_disc(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY scene_load_ms)
        FROM perf_snapshots
        WHERE project_id = :project AND created_at >= :start AND created_at < :end
              AND scene IS NOT NULL AND scene_load_ms IS NOT NULL
        GROUP BY scene ORDER BY count(*) DESC, scene"""), params).all()
    return {
        "days": win.days,
        "versions": [item for item, _ in versions],
        "scenes": [{"scene": r[0], "count": int(r[1]), "avg_ms": health.two_decimals(r[2]),
                    "p50_ms": health.two_decimals(r[3][0]),
                    "p95_ms": health.two_decimals(r[3][1])}
                   for r in scenes],
    }


def snapshot_out(s: PerfSnapshot) -> PerfSnapshotOut:
    return {"id": s.id, "bug_id": s.bug_id, "created_at": isoformat(s.created_at),
            "fps": s.fps, "frame_time_ms": s.frame_time_ms, "memory_used_mb": s.memory_used_mb,
            "platform": s.platform or None, "game_version": s.game_version or None,
            "scene": s.scene, "scene_load_ms": s.scene_load_ms,
            "custom_metrics": s.custom_metrics}


def bug_snapshots(*, session: Session, project: Project, bug_id: str,
                  page: Page) -> tuple[list[PerfSnapshot], int]:
    """`GET …/bugs/{id}/performance`: the snapshots sent with that bug, newest first. 404 for
    a malformed id, or a bug analytics knows neither from the bugs service nor from a
    snapshot (a snapshot often arrives before its bug)."""
    try:
        bug_id = str(uuid.UUID(bug_id))
    except ValueError:
        raise errors.NotFound("Bug not found") from None
    table = PerfSnapshot.__table__  # type: ignore[attr-defined]
    where = sa.and_(table.c.project_id == project.id, table.c.bug_id == bug_id)
    total = int(session.execute(sa.select(sa.func.count()).select_from(table)
                                .where(where)).scalar_one())
    if total == 0:
        bug = session.get(Bug, bug_id)
        if bug is None or bug.project_id != project.id:
            raise errors.NotFound("Bug not found")
    rows = session.execute(sa.select(PerfSnapshot).where(where)
                           .order_by(table.c.created_at.desc(), table.c.id.desc())
                           .offset(page.offset).limit(page.limit)).scalars().all()
    return list(rows), total
