"""Tables of the regressions area: detected regressions and the state of the worker's crash
signals.

- `regressions`: one row per regression, unique per (project_id, dedupe_key), so detection
  can run any number of times (schedule, on demand, concurrently) and report each once. The
  key is `recurrence:<bug_id>:<version>`, `crash_rate:<version>:<previous>` or
  `frame_time:<version>:<previous>`.
- `crash_signals`: per (project, kind) the last time the worker emitted that signal: the
  cooldown that makes one incident signal once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from bugnet_common.bus.events import utcnow

from ..models import Base

KINDS: tuple[str, ...] = ("recurrence", "crash_rate", "frame_time")
STATUSES: tuple[str, ...] = ("open", "confirmed", "dismissed")


class Regression(Base, table=True):
    __tablename__ = "regressions"
    __table_args__ = (
        sa.UniqueConstraint("project_id", "dedupe_key", name="uq_regressions_project_key"),
        sa.Index("ix_regressions_project_detected", "project_id", "detected_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    project_id: str = Field(sa_column=sa.Column(sa.String(36), nullable=False))
    kind: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    version: str | None = Field(default=None, max_length=50)
    previous_version: str | None = Field(default=None, max_length=50)
    bug_id: str | None = Field(default=None, max_length=36)
    details: dict[str, Any] = Field(default_factory=dict,
                                    sa_column=sa.Column(JSONB, nullable=False))
    status: str = Field(default="open", sa_column=sa.Column(sa.String(16), nullable=False))
    dedupe_key: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    detected_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(
        sa.DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(
        sa.DateTime(timezone=True), nullable=False))


class CrashSignal(Base, table=True):
    __tablename__ = "crash_signals"

    project_id: str = Field(sa_column=sa.Column(sa.String(36), primary_key=True))
    kind: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    signaled_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True),
                                                      nullable=False))
