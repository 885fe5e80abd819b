"""Tables of notifications: preferences, the in-app list, bug participants, queued emails.

Invariants:
- A user's preferences are one `notification_preferences` row (global maps of event → bool
  per channel, holding only what the user set; defaults fill the rest) and at most one
  `notification_project_preferences` row per project (overrides, same shape). A project's
  overrides go with the project (ON DELETE CASCADE on the read-model row).
- `notifications` and `outgoing_emails` are unique per (user_id, dedupe_key): staging the same
  notification twice (a replayed event) leaves one row.
- `bug_participants` is who takes part in a bug (reporter, assignee, commenters), kept from
  bug and comment events so a comment can notify everyone in the conversation.
- `outgoing_emails` is the mail queue: a `pending` row whose `next_attempt_at` is due is
  claimed by the mailer (its `next_attempt_at` moved past the lease), sent, and marked `sent`,
  `failed` (final) or left `pending` with a later `next_attempt_at`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from bugnet_common.bus.events import utcnow

from ..models import Base


def _ts(nullable: bool = False) -> Any:
    return Field(default_factory=utcnow if not nullable else None,
                 sa_column=sa.Column(sa.DateTime(timezone=True), nullable=nullable))


def _json(default: Any) -> Any:
    return Field(default_factory=default, sa_column=sa.Column(JSONB, nullable=False))


def _project_fk(*, primary_key: bool = False, nullable: bool = False) -> Any:
    column = sa.Column(sa.String(36), sa.ForeignKey("projects.id", ondelete="CASCADE"),
                       nullable=nullable, primary_key=primary_key, index=not primary_key)
    return Field(default=None, sa_column=column) if nullable else Field(sa_column=column)


class NotificationPreference(Base, table=True):
    """A user's own choices per channel (`{event: bool}`); missing events use the defaults."""

    __tablename__ = "notification_preferences"

    user_id: str = Field(primary_key=True, max_length=36)
    email: dict[str, bool] = _json(dict)
    in_app: dict[str, bool] = _json(dict)
    discord_dm: dict[str, bool] = _json(dict)
    updated_at: datetime = _ts()


class NotificationProjectPreference(Base, table=True):
    """A user's overrides for one project; missing events fall back to the global choice."""

    __tablename__ = "notification_project_preferences"

    user_id: str = Field(sa_column=sa.Column(sa.String(36), primary_key=True))
    project_id: str = _project_fk(primary_key=True)
    email: dict[str, bool] = _json(dict)
    in_app: dict[str, bool] = _json(dict)
    discord_dm: dict[str, bool] = _json(dict)
    updated_at: datetime = _ts()


class Notification(Base, table=True):
    """One in-app notification of one user."""

    __tablename__ = "notifications"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "dedupe_key", name="uq_notifications_user_dedupe"),
        sa.Index("ix_notifications_user_created", "user_id", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    user_id: str = Field(max_length=36)
    project_id: str = _project_fk()
    event: str = Field(max_length=32)
    title: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    body: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    url: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    data: dict[str, Any] = _json(dict)
    dedupe_key: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    read_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()


class BugParticipant(Base, table=True):
    """Someone taking part in a bug: its reporter, an assignee, a commenter."""

    __tablename__ = "bug_participants"

    bug_id: str = Field(sa_column=sa.Column(sa.String(36), primary_key=True))
    user_id: str = Field(sa_column=sa.Column(sa.String(36), primary_key=True, index=True))
    project_id: str = _project_fk()
    reason: str = Field(max_length=16)  # reporter, assignee, commenter (the first one seen)
    created_at: datetime = _ts()


class OutgoingEmail(Base, table=True):
    """One notification email to one address (the mailer's queue)."""

    __tablename__ = "outgoing_emails"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "dedupe_key", name="uq_outgoing_emails_user_dedupe"),
        sa.Index("ix_outgoing_emails_due", "next_attempt_at",
                 postgresql_where=sa.text("status = 'pending'")),
    )

    id: str = Field(primary_key=True, max_length=36)
    user_id: str = Field(max_length=36, index=True)
    project_id: str | None = _project_fk(nullable=True)
    event: str = Field(max_length=32)
    to_address: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    subject: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    body: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    dedupe_key: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(default="pending", max_length=16)  # pending, sent, failed
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    created_at: datetime = _ts()
    next_attempt_at: datetime | None = _ts(nullable=True)
    sent_at: datetime | None = _ts(nullable=True)
