"""Tables of the analytics service: read models of the bugs service, game sessions and their
rollups, performance snapshots and satisfaction ratings.

Read models (built by `handlers.py` from the BUGS stream, rebuildable by replaying it):
- `projects`, `api_keys` (every hash a project ever had; `superseded_at` set once rotated
  away — a superseded hash never works again, even if an older event mentioning it is
  replayed), `members` (effective permissions as the bugs service computed them; a removed
  member keeps a row with `role` NULL so a late event cannot bring them back), `bugs`,
  `bug_occurrences`, and `tombstones` (deleted projects and bugs: late events never
  resurrect them).

Sessions and their rollups (written together by the ingestion batch, one transaction; see
`sessions/ingest.py`):
- `game_sessions`: one row per session token. Tokens are global: a token belongs to the
  project that first used it. `day` is the UTC day it started (a session counts on that day);
  `crashed` is sticky. `platform` is normalized (§8) and, like `game_version`, '' when unknown.
- `session_daily`: per (project, day, game_version, platform): sessions started, of them
  crashed, first and last start time. Serves crash-free rates, trends, per-version and
  per-platform splits, adoption and first/last seen without touching `game_sessions`.
- `session_minutes`: per (project, minute): sessions started and crashed (by start minute),
  for short windows (spikes, drops).
- `players` + `player_days`: crash-free users. A player (steam_id, else device_id, else
  platform|os_info|device_info; a session with none is nobody's) has `last_seen_day` (the
  newest day one of their sessions started) and `last_crashed_day` (the newest start day of a
  crashed session). `player_days.players` counts players whose `last_seen_day` is that day,
  `player_days.crashed_players` those whose `last_crashed_day` is. So for the window "the last
  N days up to today": users = sum(players) over days >= start, crashed users =
  sum(crashed_players) over days >= start — exact, and O(days) to read.

Invariant: every rollup equals what a GROUP BY over `game_sessions` would give (tests check it).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from bugnet_common.bus.events import utcnow
from bugnet_common.bus.tables import bus_tables


class Base(SQLModel, registry=registry()):
    """This service's tables, on a MetaData of their own (services may share a process in tests)."""


BUS = bus_tables(Base.metadata)


def _ts(nullable: bool = False) -> Any:
    return Field(default_factory=utcnow if not nullable else None,
                 sa_column=sa.Column(sa.DateTime(timezone=True), nullable=nullable))


def _pk(type_: Any) -> Any:
    return Field(sa_column=sa.Column(type_, primary_key=True))


def _count() -> Any:
    return Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False,
                                                server_default="0"))


# ---- read models of the bugs service --------------------------------------------------------

class Project(Base, table=True):
    __tablename__ = "projects"

    id: str = Field(primary_key=True, max_length=36)
    slug: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    name: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    owner_id: str | None = Field(default=None, max_length=36)
    settings: dict[str, Any] = Field(default_factory=dict,
                                     sa_column=sa.Column(JSONB, nullable=False))
    updated_at: datetime = _ts()  # time of the newest event applied


class ApiKey(Base, table=True):
    """Every API key hash a project has had; only rows with `superseded_at` NULL work."""

    __tablename__ = "api_keys"

    key_hash: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    project_id: str = Field(sa_column=sa.Column(sa.String(36), nullable=False, index=True))
    created_at: datetime = _ts()
    superseded_at: datetime | None = _ts(nullable=True)


class Member(Base, table=True):
    """A project member with effective permissions; `role` NULL once removed."""

    __tablename__ = "members"

    project_id: str = _pk(sa.String(36))
    user_id: str = Field(sa_column=sa.Column(sa.String(36), primary_key=True, index=True))
    role: str | None = Field(default=None, max_length=16)
    permissions: list[str] = Field(default_factory=list,
                                   sa_column=sa.Column(JSONB, nullable=False))
    updated_at: datetime = _ts()


class Bug(Base, table=True):
    __tablename__ = "bugs"
    __table_args__ = (
        sa.Index("ix_analytics_bugs_project_created", "project_id", "created_at"),
        sa.Index("ix_analytics_bugs_project_resolved", "project_id", "resolved_at",
                 postgresql_where=sa.text("resolved_at IS NOT NULL")),
        sa.Index("ix_analytics_bugs_project_fingerprint", "project_id", "fingerprint",
                 postgresql_where=sa.text("fingerprint IS NOT NULL")),
    )

    id: str = Field(primary_key=True, max_length=36)
    project_id: str = Field(sa_column=sa.Column(sa.String(36), nullable=False))
    number: int
    title: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(max_length=16)
    priority: str = Field(max_length=16)
    category: str = Field(max_length=16)
    source: str = Field(default="dashboard", max_length=16)
    platform: str | None = Field(default=None, max_length=50)  # normalized
    game_version: str | None = Field(default=None, max_length=50)
    fingerprint: str | None = Field(default=None, max_length=64)
    is_public: bool = False
    occurrences: int = 1
    created_at: datetime = _ts()
    resolved_at: datetime | None = _ts(nullable=True)
    last_seen_at: datetime | None = _ts(nullable=True)  # newest occurrence (created_at first)
    updated_at: datetime = _ts()  # time of the newest event applied


class BugOccurrence(Base, table=True):
    """One report of a grouped crash: the bug's first report (from `bug_created`, player
    unknown) and each `bug_occurred` after it."""

    __tablename__ = "bug_occurrences"
    __table_args__ = (
        sa.Index("ix_analytics_occurrences_project_at", "project_id", "occurred_at"),
        sa.Index("ix_analytics_occurrences_bug", "bug_id", "occurred_at"),
    )

    event_id: str = Field(sa_column=sa.Column(sa.String(36), primary_key=True))
    project_id: str = Field(sa_column=sa.Column(sa.String(36), nullable=False))
    bug_id: str = Field(sa_column=sa.Column(sa.String(36), nullable=False))
    occurred_at: datetime = _ts()
    game_version: str | None = Field(default=None, max_length=50)
    platform: str | None = Field(default=None, max_length=50)  # normalized
    player_key: str | None = Field(default=None, max_length=200)


class Tombstone(Base, table=True):
    """A deleted project or bug: events about it that arrive late are ignored."""

    __tablename__ = "tombstones"

    kind: str = Field(sa_column=sa.Column(sa.String(16), primary_key=True))  # project, bug
    id: str = Field(sa_column=sa.Column(sa.String(36), primary_key=True))
    deleted_at: datetime = _ts()


# ---- sessions and rollups -------------------------------------------------------------------

class GameSession(Base, table=True):
    __tablename__ = "game_sessions"

    session_token: str = Field(sa_column=sa.Column(sa.String(200), primary_key=True))
    project_id: str = Field(sa_column=sa.Column(sa.String(36), nullable=False))
    started_at: datetime = _ts()
    day: date = Field(sa_column=sa.Column(sa.Date, nullable=False))
    ended_at: datetime | None = _ts(nullable=True)
    crashed: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False))
    platform: str = Field(default="", sa_column=sa.Column(sa.String(50), nullable=False))
    game_version: str = Field(default="", sa_column=sa.Column(sa.String(50), nullable=False))
    os_info: str | None = Field(default=None, max_length=100)
    device_info: str | None = Field(default=None, max_length=200)
    steam_id: str | None = Field(default=None, max_length=30)
    device_id: str | None = Field(default=None, max_length=100)
    player_hash: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger,
                                                                      nullable=True))
    started_by_end: bool = Field(default=False, sa_column=sa.Column(sa.Boolean,
                                                                    nullable=False))


class SessionDaily(Base, table=True):
    __tablename__ = "session_daily"

    project_id: str = _pk(sa.String(36))
    day: date = _pk(sa.Date)
    game_version: str = _pk(sa.String(50))
    platform: str = _pk(sa.String(50))
    sessions: int = _count()
    crashed: int = _count()
    first_started_at: datetime = _ts()
    last_started_at: datetime = _ts()


class SessionMinute(Base, table=True):
    __tablename__ = "session_minutes"

    project_id: str = _pk(sa.String(36))
    minute: datetime = _pk(sa.DateTime(timezone=True))
    sessions: int = _count()
    crashed: int = _count()


class Player(Base, table=True):
    __tablename__ = "players"

    project_id: str = _pk(sa.String(36))
    player_hash: int = _pk(sa.BigInteger)
    first_seen_day: date = Field(sa_column=sa.Column(sa.Date, nullable=False))
    last_seen_day: date = Field(sa_column=sa.Column(sa.Date, nullable=False))
    last_crashed_day: date | None = Field(default=None, sa_column=sa.Column(sa.Date))


class PlayerDay(Base, table=True):
    __tablename__ = "player_days"

    project_id: str = _pk(sa.String(36))
    day: date = _pk(sa.Date)
    players: int = _count()  # players whose last_seen_day is this day
    crashed_players: int = _count()  # players whose last_crashed_day is this day


# ---- performance and satisfaction -----------------------------------------------------------

class PerfSnapshot(Base, table=True):
    __tablename__ = "perf_snapshots"
    __table_args__ = (
        sa.Index("ix_perf_project_created", "project_id", "created_at"),
        sa.Index("ix_perf_project_bug", "project_id", "bug_id",
                 postgresql_where=sa.text("bug_id IS NOT NULL")),
    )

    id: str = Field(primary_key=True, max_length=36)
    project_id: str = Field(sa_column=sa.Column(sa.String(36), nullable=False))
    created_at: datetime = _ts()
    day: date = Field(sa_column=sa.Column(sa.Date, nullable=False))
    game_version: str = Field(default="", sa_column=sa.Column(sa.String(50), nullable=False))
    platform: str = Field(default="", sa_column=sa.Column(sa.String(50), nullable=False))
    fps: float = Field(sa_column=sa.Column(sa.Float, nullable=False))
    frame_time_ms: float = Field(sa_column=sa.Column(sa.Float, nullable=False))
    memory_used_mb: float = Field(sa_column=sa.Column(sa.Float, nullable=False))
    scene: str | None = Field(default=None, max_length=200)
    scene_load_ms: float | None = Field(default=None, sa_column=sa.Column(sa.Float))
    custom_metrics: dict[str, Any] = Field(default_factory=dict,
                                           sa_column=sa.Column(JSONB, nullable=False))
    bug_id: str | None = Field(default=None, max_length=36)


class SatisfactionRating(Base, table=True):
    __tablename__ = "satisfaction_ratings"
    __table_args__ = (
        sa.UniqueConstraint("bug_id", "rater_key", name="uq_satisfaction_bug_rater"),
        sa.Index("ix_satisfaction_project_created", "project_id", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    project_id: str = Field(sa_column=sa.Column(sa.String(36), nullable=False))
    bug_id: str = Field(sa_column=sa.Column(sa.String(36), nullable=False))
    rater_key: str = Field(sa_column=sa.Column(sa.String(80), nullable=False))
    rating: int = Field(sa_column=sa.Column(sa.SmallInteger, nullable=False))
    comment: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    created_at: datetime = _ts()  # when the current rating was given (a replacement renews it)
