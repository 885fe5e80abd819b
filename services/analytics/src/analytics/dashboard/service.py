"""The project dashboard (spec §6): bugs by status, priority and category, and the daily
opened / resolved trend — from the bugs read model.

`by_*` count the project's current bugs (every known value is present, zero included; a
value outside the bugs service's enums, should one appear, is counted under its own name).
The trend counts, per UTC day of the window, the bugs created that day (`opened`) and the
bugs whose current resolution happened that day (`resolved`: a bug reopened since is no
longer counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import Field
from sqlmodel import Session
from typing_extensions import TypedDict

from bugnet_common.openapi import Date

from ..crashes.health import Window
from ..models import Project

STATUSES = ("open", "in_progress", "resolved", "closed", "wont_fix")
PRIORITIES = ("low", "medium", "high", "critical")
CATEGORIES = ("crash", "visual", "gameplay", "performance", "audio", "ui", "network", "other")


class DashboardDayOut(TypedDict):
    date: Date
    opened: Annotated[int, Field(description="Bugs created that day.")]
    resolved: Annotated[int, Field(description="Bugs whose current resolution is that day.")]


Counts = Annotated[dict[str, int], Field(description="Every known value, zero included.")]


class DashboardOut(TypedDict):
    total: Annotated[int, Field(description="The project's bugs.")]
    by_status: Counts
    by_priority: Counts
    by_category: Counts
    days: int
    trend: list[DashboardDayOut]


def _counts(rows: Sequence[Any], known: tuple[str, ...], column: int) -> dict[str, int]:
    counts = dict.fromkeys(known, 0)
    for row in rows:
        counts[row[column]] = counts.get(row[column], 0) + int(row[3])
    return counts


def dashboard(*, session: Session, project: Project, win: Window) -> DashboardOut:
    """`GET …/analytics`: the project's bug counts and the opened/resolved trend."""
    groups = session.execute(sa.text("""
        SELECT status, priority, category, count(*) FROM bugs WHERE project_id = :project
        GROUP BY status, priority, category"""), {"project": project.id}).all()
    params = {"project": project.id, "start": win.start_at, "end": win.end_at}
    opened = {r[0]: r[1] for r in session.execute(sa.text("""
        SELECT (created_at AT TIME ZONE 'UTC')::date, count(*) FROM bugs
        WHERE project_id = :project AND created_at >= :start AND created_at < :end
        GROUP BY 1"""), params).all()}
    resolved = {r[0]: r[1] for r in session.execute(sa.text("""
        SELECT (resolved_at AT TIME ZONE 'UTC')::date, count(*) FROM bugs
        WHERE project_id = :project AND resolved_at >= :start AND resolved_at < :end
        GROUP BY 1"""), params).all()}
    return {
        "total": sum(int(r[3]) for r in groups),
        "by_status": _counts(groups, STATUSES, 0),
        "by_priority": _counts(groups, PRIORITIES, 1),
        "by_category": _counts(groups, CATEGORIES, 2),
        "days": win.days,
        "trend": [{"date": day.isoformat(), "opened": int(opened.get(day, 0)),
                   "resolved": int(resolved.get(day, 0))} for day in win.dates()],
    }
