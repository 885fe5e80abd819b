"""Crash health of a project over a window: crash-free sessions and users, the daily trend,
the per-platform split and the top crash groups (see `health` for the conventions).

Everything is read from the rollups (`session_daily`, `player_days`) and the crash read model
(`bug_occurrences`), so the cost grows with days x versions x platforms, not with sessions.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from pydantic import Field
from sqlmodel import Session
from typing_extensions import TypedDict

from ..models import Project
from . import health
from .health import CrashDayOut, CrashGroupOut, PlatformHealthOut, Rate, Window

TOP_SIGNATURES = health.TOP


class CrashSummaryOut(TypedDict):
    crash_free_rate: Rate
    sessions: int
    crashed_sessions: int
    crash_free_users_rate: Rate
    users: Annotated[int, Field(description="Distinct players in the window.")]
    crashed_users: Annotated[int, Field(description="Players with a crashed session.")]
    days: int
    trend: list[CrashDayOut]
    platforms: list[PlatformHealthOut]
    top_signatures: list[CrashGroupOut]


def crash_summary(*, session: Session, project: Project, win: Window,
                  top: int = TOP_SIGNATURES) -> CrashSummaryOut:
    """`GET …/analytics/crashes`: the crash figures of `project` over `win`."""
    params = {"project": project.id, "start": win.start, "today": win.today}
    days = session.execute(sa.text("""
        SELECT day, sum(sessions), sum(crashed) FROM session_daily
        WHERE project_id = :project AND day BETWEEN :start AND :today
        GROUP BY day"""), params).all()
    platforms = session.execute(sa.text("""
        SELECT platform, sum(sessions), sum(crashed) FROM session_daily
        WHERE project_id = :project AND day BETWEEN :start AND :today
        GROUP BY platform"""), params).all()
    users = session.execute(sa.text("""
        SELECT coalesce(sum(players), 0), coalesce(sum(crashed_players), 0) FROM player_days
        WHERE project_id = :project AND day >= :start"""), params).one()
    sessions = sum(int(r[1]) for r in days)
    crashed = sum(int(r[2]) for r in days)
    players, crashed_players = int(users[0]), int(users[1])
    return {
        "crash_free_rate": health.crash_free_rate(sessions, crashed),
        "sessions": sessions,
        "crashed_sessions": crashed,
        "crash_free_users_rate": health.crash_free_rate(players, crashed_players),
        "users": players,
        "crashed_users": crashed_players,
        "days": win.days,
        "trend": health.daily_trend(win, days),
        "platforms": health.platform_split(platforms),
        "top_signatures": health.top_signatures(session, project_id=project.id, win=win,
                                                limit=top),
    }
