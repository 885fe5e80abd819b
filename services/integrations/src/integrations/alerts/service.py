"""Use cases on alert rules: list, create, change, delete, and a rule's firings.

Invariants: a rule's threshold and filters always fit its condition (schemas.THRESHOLDS,
schemas.FILTERS), also after a PATCH that changes the condition; a project has at most
MAX_RULES rules. Changing a rule's condition or filters restarts its counting (observations
are dropped) but not its cooldown.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, cast

import sqlalchemy as sa
from pydantic import Field
from sqlmodel import Session, col, func, select
from typing_extensions import TypedDict

from bugnet_common import errors
from bugnet_common.bus.events import utcnow
from bugnet_common.openapi import Timestamp, Uuid
from bugnet_common.web import Page

from ..models import ProjectRef
from ..views import iso
from .models import AlertFiring, AlertObservation, AlertRule
from .schemas import (
    THRESHOLDS,
    AlertIn,
    AlertPatch,
    Channel,
    Condition,
    checked_filters,
    checked_threshold,
)

MAX_RULES = 100
OBSERVATIONS = AlertObservation.__table__  # type: ignore[attr-defined]


def shown_number(condition: str, number: float | None) -> float | int | None:
    """Counts as integers, rates in percent with two decimals."""
    if number is None:
        return None
    spec = THRESHOLDS.get(condition)
    if spec is not None and spec[2]:
        return int(number)
    return round(number, 2)


class AlertOut(TypedDict):
    id: Uuid
    name: str
    condition: Condition
    threshold: Annotated[float | None, Field(description=(
        "A count (integer), or a crash-free rate in percent for crash_free_below; null for "
        "regression_detected."))]
    window_minutes: int
    channels: list[Channel]
    filters: Annotated[dict[str, list[str]], Field(
        description="`priority`, `category` (new bugs) or `kind` (regressions) -> values.")]
    enabled: bool
    created_by: Uuid | None
    created_at: Timestamp
    updated_at: Timestamp
    last_fired_at: Timestamp | None


class AlertFiringOut(TypedDict):
    id: Uuid
    alert_id: Uuid
    condition: Condition
    threshold: float | None
    value: Annotated[float | None, Field(description="What was measured.")]
    details: Annotated[dict[str, Any], Field(
        description="What fired it (the bug, the spike, the rate, the regression).")]
    channels: Annotated[list[Channel], Field(description="Where it was sent.")]
    suppressed: Annotated[int, Field(description=(
        "Signals that matched during the cooldown after it (not alerted again)."))]
    triggered_at: Timestamp


def alert_out(rule: AlertRule) -> AlertOut:
    return {"id": rule.id, "name": rule.name, "condition": cast(Condition, rule.condition),
            "threshold": shown_number(rule.condition, rule.threshold),
            "window_minutes": rule.window_minutes,
            "channels": cast(list[Channel], list(rule.channels)),
            "filters": dict(rule.filters), "enabled": rule.enabled,
            "created_by": rule.created_by, "created_at": iso(rule.created_at),
            "updated_at": iso(rule.updated_at), "last_fired_at": iso(rule.last_fired_at)}


def firing_out(firing: AlertFiring) -> AlertFiringOut:
    return {"id": firing.id, "alert_id": firing.alert_id,
            "condition": cast(Condition, firing.condition),
            "threshold": shown_number(firing.condition, firing.threshold),
            "value": shown_number(firing.condition, firing.value),
            "details": firing.details, "channels": cast(list[Channel], list(firing.channels)),
            "suppressed": firing.suppressed, "triggered_at": iso(firing.triggered_at)}


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


def find_rule(session: Session, project: ProjectRef, alert_id: str, *,
              for_update: bool = False) -> AlertRule:
    """The rule `alert_id` of `project`; 404 for a malformed id or another project's rule."""
    rule = None
    if _is_uuid(alert_id):
        query = select(AlertRule).where(AlertRule.id == alert_id.lower(),
                                        AlertRule.project_id == project.id)
        rule = session.exec(query.with_for_update() if for_update else query).first()
    if rule is None:
        raise errors.NotFound("Alert not found")
    return rule


def list_alerts(*, session: Session, project: ProjectRef, page: Page
                ) -> tuple[list[AlertRule], int]:
    """The project's rules, newest first."""
    total = session.exec(select(func.count()).select_from(AlertRule)
                         .where(AlertRule.project_id == project.id)).one()
    rows = session.exec(select(AlertRule).where(AlertRule.project_id == project.id)
                        .order_by(col(AlertRule.created_at).desc(), col(AlertRule.id).desc())
                        .offset(page.offset).limit(page.limit)).all()
    return list(rows), int(total)


def create_alert(*, session: Session, project: ProjectRef, actor_id: str, data: AlertIn
                 ) -> AlertRule:
    """A new rule; 400 when its threshold or filters do not fit the condition."""
    threshold = checked_threshold(data.condition, data.threshold,
                                  given="threshold" in data.model_fields_set)
    filters = checked_filters(data.condition, data.filters.given() if data.filters else {})
    # Serialized per project so two concurrent creations cannot both pass the cap.
    session.exec(select(ProjectRef.id).where(ProjectRef.id == project.id).with_for_update())
    count = session.exec(select(func.count()).select_from(AlertRule)
                         .where(AlertRule.project_id == project.id)).one()
    if count >= MAX_RULES:
        raise errors.Conflict(f"A project can have at most {MAX_RULES} alert rules")
    now = utcnow()
    rule = AlertRule(id=str(uuid.uuid4()), project_id=project.id, name=data.name,
                     condition=data.condition, threshold=threshold,
                     window_minutes=data.window_minutes, channels=list(data.channels),
                     filters=filters, enabled=data.enabled, created_by=actor_id,
                     created_at=now, updated_at=now)
    session.add(rule)
    session.commit()
    return rule


def update_alert(*, session: Session, project: ProjectRef, alert_id: str, data: AlertPatch
                 ) -> AlertRule:
    """Change the given fields; the result must still be a valid rule (400 otherwise)."""
    rule = find_rule(session, project, alert_id, for_update=True)
    given = data.model_fields_set
    condition = data.condition or rule.condition
    if "threshold" in given:
        threshold = checked_threshold(condition, data.threshold, given=True)
    elif condition != rule.condition:
        threshold = checked_threshold(condition, None, given=False)
    else:
        threshold = rule.threshold
    filters = data.filters.given() if "filters" in given and data.filters else \
        ({} if "filters" in given else dict(rule.filters))
    filters = checked_filters(condition, filters)
    restart = condition != rule.condition or filters != rule.filters
    rule.condition, rule.threshold, rule.filters = condition, threshold, filters
    if data.name is not None:
        rule.name = data.name
    if data.window_minutes is not None:
        rule.window_minutes = data.window_minutes
    if data.channels is not None:
        rule.channels = list(data.channels)
    if data.enabled is not None:
        rule.enabled = data.enabled
    rule.updated_at = utcnow()
    session.add(rule)
    if restart:
        session.execute(sa.delete(OBSERVATIONS).where(OBSERVATIONS.c.alert_id == rule.id))
    session.commit()
    return rule


def delete_alert(*, session: Session, project: ProjectRef, alert_id: str) -> AlertRule:
    """Delete a rule with its firings."""
    rule = find_rule(session, project, alert_id, for_update=True)
    session.delete(rule)
    session.commit()
    return rule


def list_firings(*, session: Session, project: ProjectRef, alert_id: str, page: Page
                 ) -> tuple[list[AlertFiring], int]:
    """A rule's firings, newest first."""
    rule = find_rule(session, project, alert_id)
    total = session.exec(select(func.count()).select_from(AlertFiring)
                         .where(AlertFiring.alert_id == rule.id)).one()
    rows = session.exec(select(AlertFiring).where(AlertFiring.alert_id == rule.id)
                        .order_by(col(AlertFiring.triggered_at).desc(),
                                  col(AlertFiring.id).desc())
                        .offset(page.offset).limit(page.limit)).all()
    return list(rows), int(total)
