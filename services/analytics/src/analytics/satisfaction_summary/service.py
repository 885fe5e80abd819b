"""Player satisfaction with fixes over a window (spec §6), from `satisfaction_ratings`.

A rating counts on the UTC day it was (last) given; a replaced rating counts once, as its
replacement. `average` has two decimals (null without ratings); `distribution` has every
rating 1-5; `trend` has every day of the window; `recent` holds the newest ratings with a
comment in the window (at most `RECENT`).
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import Field
from sqlmodel import Session
from typing_extensions import TypedDict

from bugnet_common.bus.events import isoformat
from bugnet_common.openapi import Date, Timestamp, Uuid

from ..crashes import health
from ..crashes.health import Window
from ..models import Project

RECENT = 10

# Ratings given, by rating: every rating from 1 to 5, zero included.
RatingDistributionOut = TypedDict("RatingDistributionOut", {
    "1": int, "2": int, "3": int, "4": int, "5": int})


class SatisfactionDayOut(TypedDict):
    date: Date
    average: float | None
    count: int


class RecentRatingOut(TypedDict):
    bug_id: Uuid
    rating: int
    comment: str
    created_at: Timestamp


class SatisfactionOut(TypedDict):
    days: int
    average: Annotated[float | None, Field(
        description="Average rating, two decimals; null without ratings.")]
    count: int
    distribution: RatingDistributionOut
    trend: list[SatisfactionDayOut]
    recent: Annotated[list[RecentRatingOut], Field(
        description="The newest ratings with a comment in the window.")]


def satisfaction(*, session: Session, project: Project, win: Window,
                 recent: int = RECENT) -> SatisfactionOut:
    """`GET …/analytics/satisfaction`: average, count, distribution, trend, recent comments."""
    params = {"project": project.id, "start": win.start_at, "end": win.end_at,
              "limit": recent}
    rows = session.execute(sa.text("""
        SELECT (created_at AT TIME ZONE 'UTC')::date, rating, count(*)
        FROM satisfaction_ratings
        WHERE project_id = :project AND created_at >= :start AND created_at < :end
        GROUP BY 1, 2"""), params).all()
    comments = session.execute(sa.text("""
        SELECT bug_id, rating, comment, created_at FROM satisfaction_ratings
        WHERE project_id = :project AND created_at >= :start AND created_at < :end
              AND comment IS NOT NULL AND btrim(comment) <> ''
        ORDER BY created_at DESC, id DESC LIMIT :limit"""), params).all()
    by_rating = dict.fromkeys(range(1, 6), 0)
    per_day: dict[Any, list[int]] = {}
    for day, rating, count in rows:
        by_rating[int(rating)] = by_rating.get(int(rating), 0) + int(count)
        totals = per_day.setdefault(day, [0, 0])
        totals[0] += int(rating) * int(count)
        totals[1] += int(count)
    count = sum(by_rating.values())
    points = sum(k * v for k, v in by_rating.items())
    distribution: RatingDistributionOut = {
        "1": by_rating[1], "2": by_rating[2], "3": by_rating[3], "4": by_rating[4],
        "5": by_rating[5]}
    trend: list[SatisfactionDayOut] = []
    for day in win.dates():
        points_day, count_day = per_day.get(day, [0, 0])
        trend.append({"date": day.isoformat(),
                      "average": health.average(points_day, count_day),
                      "count": count_day})
    return {
        "days": win.days,
        "average": health.average(points, count),
        "count": count,
        "distribution": distribution,
        "trend": trend,
        "recent": [{"bug_id": r[0], "rating": int(r[1]), "comment": r[2],
                    "created_at": isoformat(r[3])} for r in comments],
    }
