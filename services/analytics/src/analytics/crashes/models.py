"""Rollups of crash reports (`bug_occurrences`, the read model of the bugs service's crash
groups), so the top crash groups of a window are read from per-day rows, not from reports.

They are kept by a database trigger on `bug_occurrences` (migration 0004_regressions): every
report inserted — by the read-model consumer, a replay or a bulk load — updates them in the
same transaction, so they can never disagree with the reports. Each report counts in scope
`version = ''` (every version) and, when it names one, in its own version's scope.

- `crash_daily`: per (project, bug, version scope, UTC day): reports and the newest report
  time. Reports, versions seen and last report in a window are sums / unions over its days.
- `crash_weekly`: per (project, bug, ISO week starting Monday): reports of every version and
  the newest report time. Long windows read their whole weeks here and only the days at
  their edges from `crash_daily` (a 90-day window: ~13 weeks + a few days per group instead
  of 90 days).
- `crash_players` + `crash_player_days`: affected players, exact for windows ending today, the
  way `players` / `player_days` count users: `crash_players` has each (bug, scope, player)
  with the newest day they hit it; `crash_player_days.players` counts those whose newest day
  is that day. Players affected in the window starting `d0` = sum(players) over days >= d0.
  Reports without a player (the first report of a group) count no player.

Rows of a deleted bug are removed with it (trigger on `bugs`); a deleted project's rows go
with every other table that has `project_id`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from ..models import Base


def _key(type_: Any) -> Any:
    return sa.Column(type_, primary_key=True)


class CrashDaily(Base, table=True):
    __tablename__ = "crash_daily"
    __table_args__ = (
        # A window's days of one scope for every bug of a project, index-only.
        sa.Index("ix_crash_daily_scope_day", "project_id", "version", "day",
                 postgresql_include=["bug_id", "occurrences", "last_at"]),
    )

    project_id: str = Field(sa_column=_key(sa.String(36)))
    bug_id: str = Field(sa_column=_key(sa.String(36)))
    version: str = Field(sa_column=_key(sa.String(50)))  # '' = every version
    day: date = Field(sa_column=_key(sa.Date))
    occurrences: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    last_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class CrashWeekly(Base, table=True):
    __tablename__ = "crash_weekly"
    __table_args__ = (
        sa.Index("ix_crash_weekly_week", "project_id", "week",
                 postgresql_include=["bug_id", "occurrences", "last_at"]),
    )

    project_id: str = Field(sa_column=_key(sa.String(36)))
    bug_id: str = Field(sa_column=_key(sa.String(36)))
    week: date = Field(sa_column=_key(sa.Date))  # the Monday
    occurrences: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    last_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class CrashPlayer(Base, table=True):
    __tablename__ = "crash_players"

    project_id: str = Field(sa_column=_key(sa.String(36)))
    bug_id: str = Field(sa_column=_key(sa.String(36)))
    version: str = Field(sa_column=_key(sa.String(50)))
    player_key: str = Field(sa_column=_key(sa.String(200)))
    last_day: date = Field(sa_column=sa.Column(sa.Date, nullable=False))


class CrashPlayerDay(Base, table=True):
    __tablename__ = "crash_player_days"

    project_id: str = Field(sa_column=_key(sa.String(36)))
    bug_id: str = Field(sa_column=_key(sa.String(36)))
    version: str = Field(sa_column=_key(sa.String(50)))
    day: date = Field(sa_column=_key(sa.Date))
    players: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
