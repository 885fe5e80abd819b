"""Tables of the bugs service: projects and their keys, team, bugs and everything on them.

Invariants:
- A project's API key is stored only as its SHA-256 (`api_key_hash`, unique); the key itself
  is shown once, at creation and at regeneration.
- `bugs.number` is a per-project sequence drawn from `projects.bug_seq` under a row lock.
- `bugs.search_text` is title + description + steps + comment bodies, kept current by the use
  cases; full-text and trigram indexes on it serve `search` and `similar`.
- `users` is a read model of the auth service's users, built from its events.
"""

from __future__ import annotations

from datetime import datetime
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


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(default_factory=utcnow if not nullable else None,
                 sa_column=sa.Column(sa.DateTime(timezone=True), nullable=nullable, index=index))


def _fk(target: str, *, nullable: bool = False, ondelete: str = "CASCADE", index: bool = True) -> Any:
    return Field(sa_column=sa.Column(sa.String(36), sa.ForeignKey(target, ondelete=ondelete),
                                     nullable=nullable, index=index))


def _json(default: Any) -> Any:
    return Field(default_factory=default, sa_column=sa.Column(JSONB, nullable=False))


class UserRef(Base, table=True):
    """Read model of auth's users: names and emails for team lists and attributions."""

    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=36)
    email: str = Field(sa_column=sa.Column(sa.Text, nullable=False, index=True))
    display_name: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    avatar: str | None = None
    deleted: bool = False
    updated_at: datetime = _ts()


class Project(Base, table=True):
    __tablename__ = "projects"

    id: str = Field(primary_key=True, max_length=36)
    slug: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    name: str = Field(max_length=100)
    description: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    website: str | None = Field(default=None, max_length=2048)
    settings: dict[str, Any] = _json(dict)
    api_key_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    api_key_last4: str = Field(max_length=4)
    bug_seq: int = 0
    created_by: str | None = Field(default=None, max_length=36)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Member(Base, table=True):
    __tablename__ = "members"

    project_id: str = Field(sa_column=sa.Column(sa.String(36), sa.ForeignKey(
        "projects.id", ondelete="CASCADE"), primary_key=True))
    user_id: str = Field(sa_column=sa.Column(sa.String(36), primary_key=True, index=True))
    role: str = Field(max_length=16)  # owner, admin, member
    joined_at: datetime = _ts()


class PermissionOverride(Base, table=True):
    __tablename__ = "permission_overrides"

    project_id: str = Field(sa_column=sa.Column(sa.String(36), sa.ForeignKey(
        "projects.id", ondelete="CASCADE"), primary_key=True))
    user_id: str = Field(sa_column=sa.Column(sa.String(36), primary_key=True))
    permission: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    granted: bool


class Invitation(Base, table=True):
    __tablename__ = "invitations"

    id: str = Field(primary_key=True, max_length=36)
    project_id: str = _fk("projects.id")
    email: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    role: str = Field(max_length=16)
    token_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    invited_by: str | None = Field(default=None, max_length=36)
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    accepted_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)


class Bug(Base, table=True):
    __tablename__ = "bugs"
    __table_args__ = (
        sa.UniqueConstraint("project_id", "number", name="uq_bugs_project_number"),
        sa.Index("ix_bugs_project_status_number", "project_id", "status", "number"),
        sa.Index("ix_bugs_project_fingerprint", "project_id", "fingerprint",
                 postgresql_where=sa.text("fingerprint IS NOT NULL")),
        # The public tracker lists only public bugs, a small slice of a big project.
        sa.Index("ix_bugs_project_public_number", "project_id", "number",
                 postgresql_where=sa.text("is_public")),
        # The sorts of GET /bugs (reports/search.py spells the same priority expression).
        sa.Index("ix_bugs_project_priority", "project_id", sa.text(
            "(CASE priority WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 "
            "WHEN 'low' THEN 1 ELSE 0 END)"), "number"),
        sa.Index("ix_bugs_project_votes", "project_id", "votes", "number"),
        sa.Index("ix_bugs_project_updated", "project_id", "updated_at", "number"),
        sa.Index("ix_bugs_project_version", "project_id", "game_version", "number"),
        sa.Index("ix_bugs_project_platform", "project_id", sa.text("lower(platform)"), "number"),
    )

    id: str = Field(primary_key=True, max_length=36)
    project_id: str = _fk("projects.id", index=False)
    number: int
    title: str = Field(max_length=300)
    description: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    category: str = Field(default="other", max_length=16)
    priority: str = Field(default="medium", max_length=16)
    status: str = Field(default="open", max_length=16)
    steps: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    expected: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    actual: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    platform: str | None = Field(default=None, max_length=50)
    game_version: str | None = Field(default=None, max_length=50)
    os_info: str | None = Field(default=None, max_length=100)
    device_info: str | None = Field(default=None, max_length=200)
    player_email: str | None = Field(default=None, max_length=254)
    reporter_user_id: str | None = Field(default=None, max_length=36)
    reporter_name: str | None = Field(default=None, max_length=100)
    reporter_steam_id: str | None = Field(default=None, max_length=30)
    assignee_id: str | None = Field(default=None, max_length=36, index=True)
    votes: int = 0
    occurrences: int = 1
    first_seen_version: str | None = Field(default=None, max_length=50)
    last_seen_version: str | None = Field(default=None, max_length=50)
    resolved_in_version: str | None = Field(default=None, max_length=50)
    platforms: list[str] = _json(list)
    versions: list[str] = _json(list)
    source: str = Field(default="dashboard", max_length=16)
    is_public: bool = False
    is_regression: bool = False
    git_issue_url: str | None = Field(default=None, max_length=2048)
    fingerprint: str | None = Field(default=None, max_length=64)
    search_text: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    resolved_at: datetime | None = _ts(nullable=True)
    last_seen_at: datetime | None = _ts(nullable=True)


class BugCount(Base, table=True):
    """How many bugs a project has per combination of the list filters status, priority,
    category, platform and assignee ('' for none). Kept by triggers on `bugs` (migration 0003),
    so every writer keeps it exact; GET /bugs sums it instead of counting rows."""

    __tablename__ = "bug_counts"

    project_id: str = Field(sa_column=sa.Column(sa.String(36), sa.ForeignKey(
        "projects.id", ondelete="CASCADE"), primary_key=True))
    status: str = Field(sa_column=sa.Column(sa.String(16), primary_key=True))
    priority: str = Field(sa_column=sa.Column(sa.String(16), primary_key=True))
    category: str = Field(sa_column=sa.Column(sa.String(16), primary_key=True))
    platform: str = Field(sa_column=sa.Column(sa.String(50), primary_key=True))
    assignee_id: str = Field(sa_column=sa.Column(sa.String(36), primary_key=True))
    n: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))


class Occurrence(Base, table=True):
    """One more report of a grouped crash."""

    __tablename__ = "occurrences"

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(),
                                                             primary_key=True))
    bug_id: str = _fk("bugs.id")
    game_version: str | None = Field(default=None, max_length=50)
    platform: str | None = Field(default=None, max_length=50)
    player_key: str | None = Field(default=None, max_length=200)
    created_at: datetime = _ts()


class Comment(Base, table=True):
    __tablename__ = "comments"

    id: str = Field(primary_key=True, max_length=36)
    bug_id: str = _fk("bugs.id")
    author_id: str | None = Field(default=None, max_length=36, index=True)
    body: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    internal: bool = False
    created_at: datetime = _ts()


class Label(Base, table=True):
    __tablename__ = "labels"
    __table_args__ = (sa.Index("uq_labels_project_name", "project_id", sa.text("lower(name)"),
                               unique=True),)

    id: str = Field(primary_key=True, max_length=36)
    project_id: str = _fk("projects.id")
    name: str = Field(max_length=50)
    color: str = Field(max_length=7)
    created_at: datetime = _ts()


class BugLabel(Base, table=True):
    __tablename__ = "bug_labels"

    bug_id: str = Field(sa_column=sa.Column(sa.String(36), sa.ForeignKey(
        "bugs.id", ondelete="CASCADE"), primary_key=True))
    label_id: str = Field(sa_column=sa.Column(sa.String(36), sa.ForeignKey(
        "labels.id", ondelete="CASCADE"), primary_key=True, index=True))


class Activity(Base, table=True):
    __tablename__ = "activity"

    id: str = Field(primary_key=True, max_length=36)
    bug_id: str = _fk("bugs.id")
    actor_id: str | None = Field(default=None, max_length=36)
    actor_name: str | None = Field(default=None, max_length=100)
    action: str = Field(max_length=32)  # changed, commented, occurred, created, labeled, ...
    field: str | None = Field(default=None, max_length=32)
    from_value: str | None = Field(default=None, sa_column=sa.Column("from", sa.Text, nullable=True))
    to_value: str | None = Field(default=None, sa_column=sa.Column("to", sa.Text, nullable=True))
    created_at: datetime = _ts()


class Vote(Base, table=True):
    __tablename__ = "votes"

    bug_id: str = Field(sa_column=sa.Column(sa.String(36), sa.ForeignKey(
        "bugs.id", ondelete="CASCADE"), primary_key=True))
    voter_key: str = Field(sa_column=sa.Column(sa.String(80), primary_key=True))
    created_at: datetime = _ts()


class Attachment(Base, table=True):
    __tablename__ = "attachments"

    id: str = Field(primary_key=True, max_length=36)
    project_id: str = _fk("projects.id")
    bug_id: str | None = Field(default=None, sa_column=sa.Column(
        sa.String(36), sa.ForeignKey("bugs.id", ondelete="CASCADE"), nullable=True, index=True))
    kind: str = Field(max_length=16)  # screenshot, replay
    content_type: str = Field(max_length=100)
    size: int
    storage_key: str = Field(max_length=300)
    filename: str | None = Field(default=None, max_length=255)
    duration_sec: float | None = None
    meta: dict[str, Any] = _json(dict)
    created_at: datetime = _ts()


class Tracker(Base, table=True):
    __tablename__ = "trackers"

    project_id: str = Field(sa_column=sa.Column(sa.String(36), sa.ForeignKey(
        "projects.id", ondelete="CASCADE"), primary_key=True))
    enabled: bool = False
    allow_search: bool = True
    allow_voting: bool = True
    allow_submissions: bool = False
    show_categories: bool = True
    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    updated_at: datetime = _ts()


class Changelog(Base, table=True):
    __tablename__ = "changelogs"

    id: str = Field(primary_key=True, max_length=36)
    project_id: str = _fk("projects.id")
    version: str = Field(max_length=50)
    title: str = Field(max_length=200)
    body: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    bug_ids: list[str] = _json(list)
    published: bool = False
    published_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Branding(Base, table=True):
    __tablename__ = "branding"

    project_id: str = Field(sa_column=sa.Column(sa.String(36), sa.ForeignKey(
        "projects.id", ondelete="CASCADE"), primary_key=True))
    logo_url: str | None = Field(default=None, max_length=2048)
    primary_color: str | None = Field(default=None, max_length=7)
    accent_color: str | None = Field(default=None, max_length=7)
    updated_at: datetime = _ts()
