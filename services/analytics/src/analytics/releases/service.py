"""Release health: per game version over a window (spec §6).

A release is a non-empty `game_version` seen in the project's sessions. Per release:
`sessions` / `crashed` / `crash_free_rate` in the window; `adoption` = its share of all the
window's sessions (those without a version included), percent; `bugs` = bugs reported
against that version and `new_signatures` = crash groups first reported in it (all time,
from the bugs read model); `first_seen` / `last_seen` = its first and newest session start
ever. Releases are listed newest first (`health.release_key`: semantic order, falling back
to first-seen); the list holds those with sessions in the window. The detail answers for any
version the project has seen (sessions or bugs), adding the daily trend, the platform split
and the top crashes in the window, the previous release (the one just before it among every
release with sessions) and the delta to it (this minus previous, from exact rates).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from pydantic import Field
from sqlmodel import Session
from typing_extensions import TypedDict

from bugnet_common import errors
from bugnet_common.bus.events import isoformat
from bugnet_common.openapi import Timestamp
from bugnet_common.web import Page

from ..crashes import health
from ..crashes.health import CrashDayOut, CrashGroupOut, PlatformHealthOut, Rate, Window
from ..models import Project
from .models import BUGS_BY_VERSION

TOP_CRASHES = health.TOP
INDEXES = (BUGS_BY_VERSION,)  # bug_counts reads bugs by (project_id, game_version)


class ReleaseOut(TypedDict):
    version: str
    sessions: Annotated[int, Field(description="Sessions started in the window.")]
    crashed: int
    crash_free_rate: Rate
    adoption: Annotated[float | None, Field(
        description="Share of all the window's sessions, percent with two decimals.")]
    bugs: Annotated[int, Field(description="Bugs reported against this version (all time).")]
    new_signatures: Annotated[int, Field(
        description="Crash groups first reported in this version (all time).")]
    first_seen: Timestamp
    last_seen: Timestamp


class ReleaseDeltaOut(TypedDict):
    crash_free_rate: Annotated[float | None, Field(
        description="This version's rate minus the previous one's, points.")]
    sessions: int | None


class ReleaseDetailOut(ReleaseOut):
    days: int
    trend: list[CrashDayOut]
    platforms: list[PlatformHealthOut]
    top_crashes: list[CrashGroupOut]
    previous_version: str | None
    delta: ReleaseDeltaOut


@dataclass(frozen=True)
class Release:
    version: str
    sessions: int  # in the window
    crashed: int
    first_seen: datetime
    last_seen: datetime

    def out(self, *, total: int, bugs: tuple[int, int]) -> ReleaseOut:
        return {"version": self.version, "sessions": self.sessions, "crashed": self.crashed,
                "crash_free_rate": health.crash_free_rate(self.sessions, self.crashed),
                "adoption": health.percent(self.sessions, total),
                "bugs": bugs[0], "new_signatures": bugs[1],
                "first_seen": isoformat(self.first_seen),
                "last_seen": isoformat(self.last_seen)}


@dataclass(frozen=True)
class Releases:
    by_version: dict[str, Release]
    ordered: list[str]  # every release ever, newest first
    total: int  # the window's sessions, with or without a version


def releases(session: Session, *, project_id: str, win: Window) -> Releases:
    """Every release the project's sessions have seen, with its window figures."""
    rows = session.execute(sa.text("""
        SELECT game_version,
               coalesce(sum(sessions) FILTER (WHERE day BETWEEN :start AND :today), 0),
               coalesce(sum(crashed) FILTER (WHERE day BETWEEN :start AND :today), 0),
               min(first_started_at), max(last_started_at)
        FROM session_daily WHERE project_id = :project
        GROUP BY game_version"""), {"project": project_id, "start": win.start,
                                    "today": win.today}).all()
    total = sum(int(r[1]) for r in rows)
    by_version = {r[0]: Release(version=r[0], sessions=int(r[1]), crashed=int(r[2]),
                                first_seen=r[3], last_seen=r[4]) for r in rows if r[0]}
    ordered = health.newest_first((v, rel.first_seen) for v, rel in by_version.items())
    return Releases(by_version=by_version, ordered=ordered, total=total)


def bug_counts(session: Session, *, project_id: str,
               versions: list[str]) -> dict[str, tuple[int, int]]:
    """version -> (bugs reported against it, crash groups first reported in it)."""
    if not versions:
        return {}
    rows = session.execute(sa.text("""
        SELECT game_version, count(*), count(*) FILTER (WHERE fingerprint IS NOT NULL)
        FROM bugs WHERE project_id = :project AND game_version = ANY(:versions)
        GROUP BY game_version"""), {"project": project_id, "versions": versions}).all()
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def list_releases(*, session: Session, project: Project, win: Window,
                  page: Page) -> tuple[list[ReleaseOut], int]:
    """`GET …/analytics/releases`: releases with sessions in the window, newest first."""
    found = releases(session, project_id=project.id, win=win)
    active = [v for v in found.ordered if found.by_version[v].sessions > 0]
    shown = active[page.offset:page.offset + page.limit]
    counts = bug_counts(session, project_id=project.id, versions=shown)
    return ([found.by_version[v].out(total=found.total, bugs=counts.get(v, (0, 0)))
             for v in shown], len(active))


def release_detail(*, session: Session, project: Project, version: str,
                   win: Window, top: int = TOP_CRASHES) -> ReleaseDetailOut:
    """`GET …/analytics/releases/{version}`; 404 for a version the project never saw."""
    found = releases(session, project_id=project.id, win=win)
    counts = bug_counts(session, project_id=project.id, versions=[version])
    release = found.by_version.get(version)
    if release is None:
        if version not in counts:
            raise errors.NotFound(f"Release '{version}' not found")
        # Bugs name this version but no session has yet: a release without sessions.
        first = session.execute(sa.text(
            "SELECT min(created_at), max(created_at) FROM bugs "
            "WHERE project_id = :project AND game_version = :version"),
            {"project": project.id, "version": version}).one()
        release = Release(version=version, sessions=0, crashed=0, first_seen=first[0],
                          last_seen=first[1])
    out = release.out(total=found.total, bugs=counts.get(version, (0, 0)))
    params = {"project": project.id, "version": version, "start": win.start,
              "today": win.today}
    days = session.execute(sa.text("""
        SELECT day, sum(sessions), sum(crashed) FROM session_daily
        WHERE project_id = :project AND game_version = :version
              AND day BETWEEN :start AND :today
        GROUP BY day"""), params).all()
    platforms = session.execute(sa.text("""
        SELECT platform, sum(sessions), sum(crashed) FROM session_daily
        WHERE project_id = :project AND game_version = :version
              AND day BETWEEN :start AND :today
        GROUP BY platform"""), params).all()
    previous_version = health.previous_of(found.ordered, version)
    previous = found.by_version.get(previous_version) if previous_version else None
    delta: ReleaseDeltaOut = {"crash_free_rate": None, "sessions": None}
    if previous is not None:
        now_rate = health.exact_crash_free_rate(release.sessions, release.crashed)
        before = health.exact_crash_free_rate(previous.sessions, previous.crashed)
        delta = {"crash_free_rate": None if now_rate is None or before is None
                 else health.two_decimals(now_rate - before),
                 "sessions": release.sessions - previous.sessions}
    return {
        **out,
        "days": win.days,
        "trend": health.daily_trend(win, days),
        "platforms": health.platform_split(platforms),
        "top_crashes": health.top_signatures(session, project_id=project.id, win=win,
                                             limit=top, version=version),
        "previous_version": previous_version,
        "delta": delta,
    }
