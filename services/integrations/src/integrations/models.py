"""Tables of the integrations service.

Invariants:
- `projects`, `members` and `users` are read models of the bugs and auth services, built from
  their events (handlers.py); nothing else writes them. A member's `permissions` is the
  effective list bugs computed (role defaults + overrides). Deleted projects and users leave a
  `tombstones` row so a late, redelivered event cannot bring them back.
- Everything a project owns here references `projects.id` with ON DELETE CASCADE: deleting
  the read-model row (project_deleted) removes the project's integrations.
- Credentials (webhook secrets, Discord webhook URLs, git tokens) are stored encrypted
  (crypto.py), never in plain text.
- `deliveries` is the outgoing queue: a `pending` row with `next_attempt_at` due is claimed by
  a worker for `lease_until`; each attempt appends a `delivery_attempts` row and moves the
  delivery to `delivered`, `failed` (final) or back to `pending` with a later
  `next_attempt_at`, in one transaction.
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


def _project_fk(*, primary_key: bool = False, index: bool = True) -> Any:
    return Field(sa_column=sa.Column(sa.String(36), sa.ForeignKey("projects.id", ondelete="CASCADE"),
                                     nullable=False, primary_key=primary_key,
                                     index=index and not primary_key))


def _json(default: Any) -> Any:
    return Field(default_factory=default, sa_column=sa.Column(JSONB, nullable=False))


# ---- read models ----------------------------------------------------------------------------

class ProjectRef(Base, table=True):
    """Read model of bugs' projects."""

    __tablename__ = "projects"

    id: str = Field(primary_key=True, max_length=36)
    slug: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    name: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    updated_at: datetime = _ts()


class MemberRef(Base, table=True):
    """Read model of bugs' project members with their effective permissions."""

    __tablename__ = "members"

    project_id: str = _project_fk(primary_key=True)
    user_id: str = Field(sa_column=sa.Column(sa.String(36), primary_key=True, index=True))
    role: str = Field(max_length=16)
    permissions: list[str] = _json(list)
    updated_at: datetime = _ts()


class UserRef(Base, table=True):
    """Read model of auth's users (deleted users are removed)."""

    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=36)
    email: str = Field(sa_column=sa.Column(sa.Text, nullable=False, index=True))
    display_name: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    updated_at: datetime = _ts()


class Tombstone(Base, table=True):
    """A deleted project or user; upserts of read models skip ids recorded here."""

    __tablename__ = "tombstones"

    kind: str = Field(sa_column=sa.Column(sa.String(16), primary_key=True))  # project, user
    id: str = Field(sa_column=sa.Column(sa.String(36), primary_key=True))
    deleted_at: datetime = _ts()


# ---- webhooks, Discord, deliveries ----------------------------------------------------------

class Webhook(Base, table=True):
    __tablename__ = "webhooks"

    id: str = Field(primary_key=True, max_length=36)
    project_id: str = _project_fk()
    url: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    events: list[str] = _json(list)
    secret_encrypted: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    enabled: bool = True
    created_by: str | None = Field(default=None, max_length=36)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class DiscordIntegration(Base, table=True):
    """One Discord channel webhook per project."""

    __tablename__ = "discord_integrations"

    project_id: str = _project_fk(primary_key=True)
    webhook_url_encrypted: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # The URL with its token masked, for display.
    webhook_url_hint: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    events: list[str] = _json(list)
    enabled: bool = True
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Delivery(Base, table=True):
    """One event to one target (a webhook, or the project's Discord channel)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # The worker's claim: due pending deliveries, oldest due first.
        sa.Index("ix_deliveries_due", "next_attempt_at",
                 postgresql_where=sa.text("status = 'pending'")),
        sa.Index("ix_deliveries_webhook_created", "webhook_id", "created_at"),
        sa.Index("ix_deliveries_project_channel_created", "project_id", "channel", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    project_id: str = _project_fk(index=False)
    webhook_id: str | None = Field(default=None, sa_column=sa.Column(
        sa.String(36), sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=True))
    channel: str = Field(max_length=16)  # webhook, discord
    event: str = Field(max_length=64)
    # host:port of the target: the unit of per-target concurrency.
    target_key: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # The exact request body (signed as is; every retry sends the same bytes).
    body: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(default="pending", max_length=16)  # pending, delivered, failed
    attempts: int = 0
    response_code: int | None = None
    duration_ms: int | None = None
    error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    created_at: datetime = _ts()
    next_attempt_at: datetime | None = _ts(nullable=True)
    lease_until: datetime | None = _ts(nullable=True)
    last_attempt_at: datetime | None = _ts(nullable=True)
    completed_at: datetime | None = _ts(nullable=True)
    # The request id bound when the delivery was queued (the correlation id of the event that
    # caused it): the engine logs its attempts with it.
    request_id: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))


class DeliveryAttempt(Base, table=True):
    """The log of every attempt of a delivery."""

    __tablename__ = "delivery_attempts"

    id: str = Field(primary_key=True, max_length=36)
    delivery_id: str = Field(sa_column=sa.Column(
        sa.String(36), sa.ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False,
        index=True))
    number: int
    outcome: str = Field(max_length=16)  # delivered, retry, failed
    response_code: int | None = None
    duration_ms: int = 0
    error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    started_at: datetime = _ts()
