"""Tables of the Steam area.

Invariants:
- `steam_integrations`: at most one per project; the Web API key is stored encrypted
  (crypto.py), only its last four characters in plain text.
- `steam_reviews`: one row per (project, Steam `recommendationid`) — a sync inserts with
  ON CONFLICT DO NOTHING, so re-importing is a no-op. Every review belongs to the project's
  current `app_id`; changing the app id deletes the previous app's reviews.
- A sync is one transaction for the reviews it fetched (all or nothing). `sync_lease_until`
  marks a sync in progress (one at a time per project); `backfill_cursor` is where the walk
  through older reviews stopped when a sync ran out of its page budget.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from ..models import Base, _json, _project_fk, _ts


class SteamIntegration(Base, table=True):
    __tablename__ = "steam_integrations"

    project_id: str = _project_fk(primary_key=True)
    app_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    api_key_encrypted: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    api_key_hint: str | None = Field(default=None, max_length=16)
    # Steam's own totals (query_summary of the first page) at the last sync.
    summary: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONB, nullable=True))
    backfill_cursor: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    sync_lease_until: datetime | None = _ts(nullable=True)
    last_synced_at: datetime | None = _ts(nullable=True)
    created_by: str | None = Field(default=None, max_length=36)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class SteamReview(Base, table=True):
    __tablename__ = "steam_reviews"
    __table_args__ = (
        sa.UniqueConstraint("project_id", "recommendation_id", name="uq_steam_reviews_recommendation"),
        # The dashboard: a project's reviews by creation time.
        sa.Index("ix_steam_reviews_project_created", "project_id", "created_at"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(),
                                                               primary_key=True))
    project_id: str = Field(sa_column=sa.Column(
        sa.String(36), sa.ForeignKey("steam_integrations.project_id", ondelete="CASCADE"),
        nullable=False))
    app_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    recommendation_id: str = Field(max_length=32)
    author_steam_id: str | None = Field(default=None, max_length=32)
    language: str | None = Field(default=None, max_length=32)
    review: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    voted_up: bool
    votes_up: int = 0
    playtime_at_review_minutes: int | None = None
    # Canonical terms of the bug/crash word list found in the text (empty: no mention).
    mentions: list[str] = _json(list)
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    updated_at: datetime | None = _ts(nullable=True)
    imported_at: datetime = _ts()
