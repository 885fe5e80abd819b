"""What every analytics query shares: the `days` window, rates, the order of releases, and
how the crash groups of a window are ranked.

Conventions (spec §6, "decided"): days are UTC; a window of `days` days ends today (UTC) and
starts `days - 1` days before it; rates and shares are percent with two decimals (rounded half
up from the exact value), null when there is nothing to divide by. Sessions and players come
from the rollups (`session_daily`, `player_days`), never from `game_sessions`.

Unknown values: a session without a version or platform is stored with ''. Such sessions
count in every total; per-platform splits show '' as the platform "unknown", and release lists
leave sessions without a version out (they are no release) while still counting them in the
denominator of adoption.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError
from sqlmodel import Session
from typing_extensions import TypedDict

from bugnet_common.bus.events import isoformat, utcnow
from bugnet_common.openapi import Date, Timestamp, Uuid
from bugnet_common.versions import parse_version

DEFAULT_DAYS = 30
MAX_DAYS = 365
TOP = 10  # crash groups listed by default
MAX_TOP = 100
UNKNOWN_PLATFORM = "unknown"
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Window:
    """The last `days` UTC days, today included."""

    days: int
    today: date

    @property
    def start(self) -> date:
        return self.today - timedelta(days=self.days - 1)

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def end_at(self) -> datetime:
        """The first instant after the window (tomorrow, midnight)."""
        return datetime.combine(self.today + timedelta(days=1), time.min, tzinfo=UTC)

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]


def window(days: int = DEFAULT_DAYS, *, now: datetime | None = None) -> Window:
    return Window(days=days, today=(now or utcnow()).astimezone(UTC).date())


def _int_param(default: int, lower: int, upper: int) -> Callable[[Any], int]:
    """The parser of an integer query parameter: empty means `default`; a 400 naming the
    parameter unless an integer in lower..upper."""
    def parse(raw: Any) -> int:
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            return default
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise PydanticCustomError("int_parsing", "must be an integer") from None
        if not lower <= value <= upper:
            raise PydanticCustomError("range", f"must be between {lower} and {upper}")
        return value

    return parse


# (The parser checks the bounds itself, with the messages above; Field documents them.)
Days = Annotated[int, Field(ge=1, le=MAX_DAYS, description="The window: the last `days` UTC "
                                                           "days, today included."),
                 BeforeValidator(_int_param(DEFAULT_DAYS, 1, MAX_DAYS))]
Top = Annotated[int, Field(ge=1, le=MAX_TOP, description="How many crash groups to list."),
                BeforeValidator(_int_param(TOP, 1, MAX_TOP))]


class WindowQuery(BaseModel):
    """`?days=`: the window of an analytics query."""

    days: Days = DEFAULT_DAYS


class TopCrashesQuery(WindowQuery):
    """`?days=&top=`: a window and how many of its crash groups to list."""

    top: Top = TOP


def window_of(query: WindowQuery) -> Window:
    return window(query.days)


Rate = Annotated[float | None, Field(description="Percent, two decimals; null when there is "
                                                 "nothing to divide by.")]


class CrashDayOut(TypedDict):
    date: Date
    sessions: int
    crashed: int
    crash_free_rate: Rate


class PlatformHealthOut(TypedDict):
    platform: Annotated[str, Field(description="Normalized platform name, or `unknown`.")]
    sessions: int
    crashed: int
    crash_free_rate: Rate


class CrashGroupOut(TypedDict):
    fingerprint: str
    bug_id: Uuid
    title: str
    occurrences: Annotated[int, Field(description="Reports in the window.")]
    affected_players: Annotated[int, Field(description="Distinct known players in the window.")]
    first_seen: Annotated[Timestamp, Field(description="The group's first report ever.")]
    last_seen: Annotated[Timestamp, Field(description="The group's newest report ever.")]
    versions: Annotated[list[str], Field(description="Versions of the window's reports, "
                                                     "oldest first.")]


def percent(numerator: int | float | Decimal, denominator: int | float | Decimal) -> float | None:
    """numerator / denominator x 100 with two decimals (half up); None for a zero denominator."""
    if not denominator:
        return None
    value = Decimal(str(numerator)) * 100 / Decimal(str(denominator))
    return float(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def average(total: int | float | Decimal, count: int) -> float | None:
    """total / count with two decimals (half up); None for no items."""
    if not count:
        return None
    value = Decimal(str(total)) / Decimal(count)
    return float(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def two_decimals(value: float | Decimal | None) -> float | None:
    if value is None:
        return None
    return float(Decimal(str(value)).quantize(_CENT, rounding=ROUND_HALF_UP))


def crash_free_rate(sessions: int, crashed: int) -> float | None:
    """(sessions - crashed) / sessions x 100, two decimals; None without sessions."""
    return percent(sessions - crashed, sessions)


def exact_crash_free_rate(sessions: int, crashed: int) -> Decimal | None:
    """The unrounded rate, for comparisons (regressions compare exact rates)."""
    if not sessions:
        return None
    return Decimal(sessions - crashed) * 100 / Decimal(sessions)


def iso(value: datetime | None) -> str | None:
    return None if value is None else isoformat(value)


def platform_name(platform: str) -> str:
    return platform or UNKNOWN_PLATFORM


def release_key(version: str, first_seen: datetime | None) -> tuple[Any, ...]:
    """Sort key of releases, oldest first: versions that parse in semantic order (ties, such as
    `1.2` and `1.2.0`, by first-seen), then — older than any of them — versions that do not
    parse, in first-seen order."""
    seen = first_seen or datetime.max.replace(tzinfo=UTC)
    parsed = parse_version(version)
    if parsed is None:
        return (0, seen, version)
    return (1, parsed, seen, version)


def newest_first(versions: Iterable[tuple[str, datetime | None]]) -> list[str]:
    """Version names, newest release first."""
    return [v for v, seen in sorted(versions, key=lambda vs: release_key(*vs), reverse=True)]


def previous_of(ordered_newest_first: list[str], version: str) -> str | None:
    """The release just before `version` in a newest-first list."""
    try:
        i = ordered_newest_first.index(version)
    except ValueError:
        return None
    return ordered_newest_first[i + 1] if i + 1 < len(ordered_newest_first) else None


def daily_trend(win: Window, rows: Iterable[Any]) -> list[CrashDayOut]:
    """[{date, sessions, crashed, crash_free_rate}] for every day of the window, from rows
    (day, sessions, crashed)."""
    by_day = {r[0]: (int(r[1]), int(r[2])) for r in rows}
    out: list[CrashDayOut] = []
    for day in win.dates():
        sessions, crashed = by_day.get(day, (0, 0))
        out.append({"date": day.isoformat(), "sessions": sessions, "crashed": crashed,
                    "crash_free_rate": crash_free_rate(sessions, crashed)})
    return out


def platform_split(rows: Iterable[Any]) -> list[PlatformHealthOut]:
    """[{platform, sessions, crashed, crash_free_rate}], most sessions first (then by name),
    from rows (platform, sessions, crashed)."""
    items = sorted(((platform_name(r[0]), int(r[1]), int(r[2])) for r in rows),
                   key=lambda x: (-x[1], x[0]))
    return [{"platform": p, "sessions": s, "crashed": c, "crash_free_rate": crash_free_rate(s, c)}
            for p, s, c in items]


def top_signatures(session: Session, *, project_id: str, win: Window, limit: int,
                   version: str | None = None) -> list[CrashGroupOut]:
    """The crash groups with the most reports in the window (optionally in one version):
    [{fingerprint, bug_id, title, occurrences, affected_players, first_seen, last_seen,
    versions}]. `occurrences`, `affected_players` (distinct known players) and `versions`
    (those of the window's reports, oldest first) are the window's; `first_seen` /
    `last_seen` are the group's first and newest report ever. Ties: newest report first.
    Read from the crash rollups (`crashes/models.py`)."""
    params: dict[str, Any] = {"project": project_id, "scope": version or "",
                              "start": win.start, "today": win.today, "limit": limit}
    if version is None:
        # Whole weeks from crash_weekly, the days at the window's edges from crash_daily.
        first_week = win.start + timedelta(days=-win.start.weekday() % 7)
        weeks = max(0, (win.today - first_week).days + 1) // 7
        params["week_from"] = first_week
        params["week_to"] = first_week + timedelta(days=7 * (weeks - 1))  # < week_from: none
        params["weeks_end"] = first_week + timedelta(days=7 * weeks - 1)
        if weeks == 0:  # no whole week: every day from crash_daily
            params["week_from"] = win.today + timedelta(days=1)
            params["weeks_end"] = win.today
        parts = """
            SELECT bug_id, occurrences, last_at FROM crash_weekly
            WHERE project_id = :project AND week BETWEEN :week_from AND :week_to
            UNION ALL
            SELECT bug_id, occurrences, last_at FROM crash_daily
            WHERE project_id = :project AND version = ''
                  AND (day >= :start AND day < :week_from
                       OR day > :weeks_end AND day <= :today)"""
    else:
        parts = """
            SELECT bug_id, occurrences, last_at FROM crash_daily
            WHERE project_id = :project AND version = :scope
                  AND day BETWEEN :start AND :today"""
    top = session.execute(sa.text(f"""
        SELECT c.bug_id, sum(c.occurrences) AS occurrences, max(c.last_at) AS newest
        FROM ({parts}) c
        GROUP BY c.bug_id
        HAVING EXISTS (SELECT 1 FROM bugs b WHERE b.id = c.bug_id
                       AND b.project_id = :project AND b.fingerprint IS NOT NULL)
        ORDER BY occurrences DESC, newest DESC, c.bug_id DESC
        LIMIT :limit"""), params).all()
    if not top:
        return []
    ids = [r[0] for r in top]
    params["ids"] = ids
    bugs = {r[0]: r for r in session.execute(sa.text("""
        SELECT id, fingerprint, title, created_at, last_seen_at FROM bugs
        WHERE id = ANY(:ids)"""), params).all()}
    players = {r[0]: r[1] for r in session.execute(sa.text("""
        SELECT bug_id, sum(players) FROM crash_player_days
        WHERE project_id = :project AND bug_id = ANY(:ids) AND version = :scope
              AND day >= :start
        GROUP BY bug_id"""), params).all()}
    versions: dict[str, list[str]] = {}
    version_rows = session.execute(sa.text("""
        SELECT DISTINCT bug_id, version FROM crash_daily
        WHERE project_id = :project AND bug_id = ANY(:ids) AND version <> ''
              AND day BETWEEN :start AND :today"""), params).all()
    for bug_id, name in version_rows:
        if version is None or name == version:
            versions.setdefault(bug_id, []).append(name)
    out: list[CrashGroupOut] = []
    for bug_id, occurrences, newest in top:
        bug = bugs[bug_id]
        last_seen = max(newest, bug[4]) if bug[4] is not None else newest
        out.append({"fingerprint": bug[1], "bug_id": bug_id, "title": bug[2],
                    "occurrences": int(occurrences),
                    "affected_players": int(players.get(bug_id, 0)),
                    "first_seen": isoformat(bug[3]), "last_seen": isoformat(last_seen),
                    "versions": sorted(versions.get(bug_id, []),
                                       key=lambda v: release_key(v, None))})
    return out
