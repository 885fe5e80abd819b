"""The api-usage report of one project over the last ``days`` UTC days (today included)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from analytics.usage.models import USAGE
from bugnet_common.bus.events import utcnow

# Always present in by_status (other classes, e.g. "none" for requests the client abandoned
# before any response, appear only when counted).
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
MAX_DAYS = 365
DEFAULT_DAYS = 30


def _empty() -> dict[str, Any]:
    return {
        "requests": 0,
        "by_group": {},
        "by_status": dict.fromkeys(STATUS_CLASSES, 0),
        "rate_limited": 0,
        "rate_limited_by_gateway": 0,
        "refused_by_gateway": 0,
    }


def _add(into: dict[str, Any], group: str, status: str, requests: int, rate_limited: int,
         rate_limited_by_gateway: int, refused: int) -> None:
    into["requests"] += requests
    into["by_group"][group] = into["by_group"].get(group, 0) + requests
    into["by_status"][status] = into["by_status"].get(status, 0) + requests
    into["rate_limited"] += rate_limited
    into["rate_limited_by_gateway"] += rate_limited_by_gateway
    into["refused_by_gateway"] += refused


def api_usage(session: Session, *, project_id: str, days: int,
              today: date | None = None) -> dict[str, Any]:
    """``{days: [{date, requests, by_group, by_status, rate_limited, ...}], totals}``.

    Every day of the window is listed, oldest first, zeros included (the trend).
    ``by_group`` holds the groups with requests; ``by_status`` always the four classes.
    """
    today = today or utcnow().date()
    start = today - timedelta(days=days - 1)
    u = USAGE.c
    rows = session.execute(
        sa.select(
            u.day, u.endpoint_group, u.status_class,
            sa.func.sum(u.requests), sa.func.sum(u.rate_limited),
            sa.func.sum(u.rate_limited_by_gateway), sa.func.sum(u.refused_by_gateway),
        )
        .where(u.project_id == project_id, u.day >= start, u.day <= today)
        .group_by(u.day, u.endpoint_group, u.status_class)
    ).all()
    per_day: dict[date, dict[str, Any]] = defaultdict(_empty)
    totals = _empty()
    for day, group, status, requests, limited, limited_gw, refused in rows:
        values = (int(requests), int(limited), int(limited_gw), int(refused))
        _add(per_day[day], group, status, *values)
        _add(totals, group, status, *values)
    trend = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        entry = per_day[day] if day in per_day else _empty()
        trend.append({"date": day.isoformat(), **_sorted(entry)})
    return {"days": trend, "totals": {"days": days, "from": start.isoformat(),
                                      "to": today.isoformat(), **_sorted(totals)}}


def _sorted(entry: dict[str, Any]) -> dict[str, Any]:
    by_group = dict(sorted(entry["by_group"].items(), key=lambda kv: (-kv[1], kv[0])))
    return {**entry, "by_group": by_group}
