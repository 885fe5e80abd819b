"""The api-usage report of one project over the last ``days`` UTC days (today included)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError
from sqlmodel import Session
from typing_extensions import TypedDict

from analytics.usage.models import USAGE
from bugnet_common.bus.events import utcnow
from bugnet_common.openapi import Date

# Always present in by_status (other classes, e.g. "none" for requests the client abandoned
# before any response, appear only when counted).
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
MAX_DAYS = 365
DEFAULT_DAYS = 30


def _days(raw: Any) -> Any:
    if raw is None or raw == "":
        return DEFAULT_DAYS
    message = f"must be a whole number from 1 to {MAX_DAYS}"
    try:
        days = int(raw)
    except (TypeError, ValueError):
        raise PydanticCustomError("int_parsing", message) from None
    if not 1 <= days <= MAX_DAYS:
        raise PydanticCustomError("range", message)
    return days


class UsageQuery(BaseModel):
    days: Annotated[int, Field(ge=1, le=MAX_DAYS,
                               description="The last `days` UTC days, today included."),
                    BeforeValidator(_days)] = DEFAULT_DAYS


_COUNTS_DOC = {
    "requests": "Requests counted by the gateway.",
    "by_group": "Requests by endpoint group (auth, bugs, sdk, ...): the groups with requests, "
                "most first.",
    "by_status": "Requests by status class: always 2xx, 3xx, 4xx and 5xx (plus `none`, "
                 "requests abandoned before any answer, when there are some).",
    "rate_limited": "429 answers, from the gateway's limiter or a service.",
    "rate_limited_by_gateway": "429 answers from the gateway's limiter.",
    "refused_by_gateway": "Requests the gateway answered itself.",
}


class UsageDayOut(TypedDict):
    date: Date
    requests: Annotated[int, Field(description=_COUNTS_DOC["requests"])]
    by_group: Annotated[dict[str, int], Field(description=_COUNTS_DOC["by_group"])]
    by_status: Annotated[dict[str, int], Field(description=_COUNTS_DOC["by_status"])]
    rate_limited: Annotated[int, Field(description=_COUNTS_DOC["rate_limited"])]
    rate_limited_by_gateway: Annotated[int, Field(
        description=_COUNTS_DOC["rate_limited_by_gateway"])]
    refused_by_gateway: Annotated[int, Field(description=_COUNTS_DOC["refused_by_gateway"])]


# `from` is a keyword: the functional form.
UsageTotalsOut = TypedDict("UsageTotalsOut", {
    "days": int,
    "from": Date,
    "to": Date,
    "requests": int,
    "by_group": dict[str, int],
    "by_status": dict[str, int],
    "rate_limited": int,
    "rate_limited_by_gateway": int,
    "refused_by_gateway": int,
})


class ApiUsageOut(TypedDict):
    days: Annotated[list[UsageDayOut], Field(
        description="Every day of the window, oldest first, zeros included.")]
    totals: UsageTotalsOut


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
              today: date | None = None) -> ApiUsageOut:
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
    trend: list[UsageDayOut] = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        entry = per_day[day] if day in per_day else _empty()
        trend.append({"date": day.isoformat(), **_counts(entry)})
    return {"days": trend, "totals": {"days": days, "from": start.isoformat(),
                                      "to": today.isoformat(), **_counts(totals)}}


class _Counts(TypedDict):
    requests: int
    by_group: dict[str, int]
    by_status: dict[str, int]
    rate_limited: int
    rate_limited_by_gateway: int
    refused_by_gateway: int


def _counts(entry: dict[str, Any]) -> _Counts:
    """An accumulated entry as answered: `by_group` most requests first, then by name."""
    by_group = dict(sorted(entry["by_group"].items(), key=lambda kv: (-kv[1], kv[0])))
    return {"requests": entry["requests"], "by_group": by_group,
            "by_status": entry["by_status"], "rate_limited": entry["rate_limited"],
            "rate_limited_by_gateway": entry["rate_limited_by_gateway"],
            "refused_by_gateway": entry["refused_by_gateway"]}
