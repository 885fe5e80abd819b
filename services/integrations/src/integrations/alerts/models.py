"""Tables of alert rules, their firings, and what counting rules have seen.

Invariants:
- A rule belongs to a project (ON DELETE CASCADE from the read-model row); its firings and
  observations go with it.
- `last_fired_at` is the rule's cooldown clock: a rule fires at most once per
  `window_minutes` (one incident alerts once); signals inside the cooldown only add to the
  latest firing's `suppressed`.
- Counting rules (new_bug, new_crash_signature) keep one `alert_observations` row per matching
  bug or signature, pruned once older than the rule's window.
- A firing is unique per (rule, source event): a replayed event cannot fire twice.
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


def _fk(target: str) -> Any:
    return Field(sa_column=sa.Column(sa.String(36), sa.ForeignKey(target, ondelete="CASCADE"),
                                     nullable=False, index=True))


class AlertRule(Base, table=True):
    __tablename__ = "alert_rules"

    id: str = Field(primary_key=True, max_length=36)
    project_id: str = _fk("projects.id")
    name: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    condition: str = Field(max_length=32)
    threshold: float | None = None
    window_minutes: int
    channels: list[str] = _json(list)
    filters: dict[str, list[str]] = _json(dict)
    enabled: bool = True
    created_by: str | None = Field(default=None, max_length=36)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    last_fired_at: datetime | None = _ts(nullable=True)


class AlertFiring(Base, table=True):
    """One time a rule fired, with what it measured and where it was sent."""

    __tablename__ = "alert_firings"
    __table_args__ = (
        sa.UniqueConstraint("alert_id", "source_event_id", name="uq_alert_firings_source"),
        sa.Index("ix_alert_firings_alert_triggered", "alert_id", "triggered_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    alert_id: str = Field(sa_column=sa.Column(
        sa.String(36), sa.ForeignKey("alert_rules.id", ondelete="CASCADE"), nullable=False))
    project_id: str = _fk("projects.id")
    condition: str = Field(max_length=32)
    threshold: float | None = None
    value: float | None = None
    details: dict[str, Any] = _json(dict)
    channels: list[str] = _json(list)
    source_event_id: str | None = Field(default=None, max_length=64)
    # Signals that matched during the cooldown after this firing (not alerted again).
    suppressed: int = 0
    triggered_at: datetime = _ts()


class AlertObservation(Base, table=True):
    """A bug or crash signature a counting rule has counted."""

    __tablename__ = "alert_observations"
    __table_args__ = (sa.Index("ix_alert_observations_alert_observed", "alert_id", "observed_at"),)

    alert_id: str = Field(sa_column=sa.Column(
        sa.String(36), sa.ForeignKey("alert_rules.id", ondelete="CASCADE"), primary_key=True))
    key: str = Field(sa_column=sa.Column(sa.String(128), primary_key=True))
    observed_at: datetime = _ts()
