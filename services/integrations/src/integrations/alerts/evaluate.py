"""Alert evaluation: bus events become signals, signals are checked against the project's
enabled rules, and a rule that fires records a firing and performs its actions.

Runs in the worker (consumers `integrations-alerts` on BUGS and `integrations-alerts-analytics`
on ANALYTICS), inside the inbox transaction; everything it does is rows in that transaction:
the firing, the `alert_triggered` outbox event, webhook/Discord deliveries (`enqueue`),
in-app notifications and queued emails (`notify`). Nothing is sent from here.

Time is the event's time, not the clock's, so replaying a stream evaluates the same way;
events older than STALE_AFTER are not evaluated (a replayed history alerts no one).
Rules of a project are locked (FOR UPDATE, in id order) while a signal is evaluated: two
workers cannot both fire one rule for one incident.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Session, col, func, select

from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event, isoformat, utcnow
from bugnet_common.bus.inbox import PoisonMessage

from ..dispatch import enqueue
from ..events import emit
from ..handlers import absolute_url, bug_data, event_time, members_with
from ..models import ProjectRef
from ..notifications.service import Message, notify
from ..settings import IntegrationsSettings
from .models import AlertFiring, AlertObservation, AlertRule
from .schemas import COUNTING
from .service import shown_number

OBSERVATIONS = AlertObservation.__table__  # type: ignore[attr-defined]
FIRINGS = AlertFiring.__table__  # type: ignore[attr-defined]
STALE_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class Signal:
    """Something that happened that rules of one condition look at."""

    condition: str
    project_id: str
    at: datetime
    event_id: str
    # Who may hear about it (the permission recipients need) and who caused it (not told).
    permission: str
    value: float | None = None  # what was measured (counting rules count instead)
    key: str | None = None  # what counting rules count (a bug, a crash signature)
    attrs: dict[str, Any] = field(default_factory=dict)  # what filters look at
    details: dict[str, Any] = field(default_factory=dict)
    actor_id: str | None = None
    url: str | None = None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(data: dict[str, Any], name: str, event: Event) -> float:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PoisonMessage(f"{event.type} without a numeric '{name}'")
    return float(value)


def _project_id(data: dict[str, Any], event: Event) -> str:
    project_id = _str(data.get("project_id"))
    if project_id is None:
        raise PoisonMessage(f"{event.type} without 'project_id'")
    return project_id


def signals_of(event: Event, settings: IntegrationsSettings) -> list[Signal]:
    """The signals in one event (a new crash bug is both a new bug and a new signature)."""
    at, d = event_time(event), event.data
    if event.type == subjects.BUG_CREATED:
        bug = d.get("bug")
        if not isinstance(bug, dict) or not _str(bug.get("project_id")) \
                or not _str(bug.get("id")):
            raise PoisonMessage(f"{event.type} without a bug")
        summary = bug_data(bug, settings)
        common = {"project_id": bug["project_id"], "at": at, "event_id": event.id,
                  "permission": "bugs.view", "actor_id": _str(d.get("actor_id")),
                  "url": summary["url"],
                  "attrs": {"priority": bug.get("priority"), "category": bug.get("category")}}
        out = [Signal(condition="new_bug", key=f"bug:{bug['id']}",
                      details={"bug": summary, "source": bug.get("source")}, **common)]
        fingerprint = _str(bug.get("fingerprint"))
        if fingerprint is not None:
            out.append(Signal(condition="new_crash_signature", key=f"fp:{fingerprint[:120]}",
                              details={"bug": summary, "fingerprint": fingerprint,
                                       "platform": bug.get("platform"),
                                       "game_version": bug.get("game_version")}, **common))
        return out
    if event.type == subjects.CRASH_SPIKE_DETECTED:
        return [Signal(condition="crash_spike", project_id=_project_id(d, event), at=at,
                       event_id=event.id, permission="analytics.view",
                       value=_number(d, "crashed_sessions", event),
                       details={"window_minutes": d.get("window_minutes"),
                                "sessions": d.get("sessions"),
                                "crashed_sessions": d.get("crashed_sessions"),
                                "baseline_crashed": d.get("baseline_crashed"),
                                "detected_at": d.get("detected_at")})]
    if event.type == subjects.CRASH_FREE_RATE_DROPPED:
        rate = _number(d, "crash_free_rate", event)
        previous = d.get("previous_rate")
        return [Signal(condition="crash_free_below", project_id=_project_id(d, event), at=at,
                       event_id=event.id, permission="analytics.view", value=rate,
                       details={"window_minutes": d.get("window_minutes"),
                                "sessions": d.get("sessions"),
                                "crashed_sessions": d.get("crashed_sessions"),
                                "crash_free_rate": round(rate, 2),
                                "previous_rate": round(previous, 2)
                                if isinstance(previous, int | float) else None,
                                "game_version": d.get("game_version"),
                                "detected_at": d.get("detected_at")})]
    if event.type == subjects.REGRESSION_DETECTED:
        slug, bug_id = _str(d.get("project_slug")), _str(d.get("bug_id"))
        url = absolute_url(settings, f"/api/projects/{slug}/bugs/{bug_id}") \
            if slug and bug_id else None
        return [Signal(condition="regression_detected", project_id=_project_id(d, event),
                       at=at, event_id=event.id, permission="bugs.view", url=url,
                       attrs={"kind": d.get("kind")},
                       details={"regression_id": d.get("regression_id"), "kind": d.get("kind"),
                                "version": d.get("version"),
                                "previous_version": d.get("previous_version"),
                                "bug_id": bug_id, "details": d.get("details") or {}})]
    raise PoisonMessage(f"no alert signal in {event.type}")


def _matches(filters: dict[str, list[str]], attrs: dict[str, Any]) -> bool:
    return all(attrs.get(name) in allowed for name, allowed in filters.items() if allowed)


def _count(session: Session, rule: AlertRule, signal: Signal) -> int | None:
    """Count `signal` for a counting rule; the matches since the window (or the last firing)
    began, or None when this bug or signature was counted before."""
    window_start = signal.at - timedelta(minutes=rule.window_minutes)
    session.execute(sa.delete(OBSERVATIONS).where(OBSERVATIONS.c.alert_id == rule.id,
                                                  OBSERVATIONS.c.observed_at < window_start))
    fresh = session.execute(pg_insert(OBSERVATIONS).values(
        alert_id=rule.id, key=signal.key, observed_at=signal.at)
        .on_conflict_do_nothing().returning(OBSERVATIONS.c.key)).first()
    if fresh is None:
        return None
    since = max(window_start, rule.last_fired_at) if rule.last_fired_at else window_start
    return int(session.exec(select(func.count()).select_from(AlertObservation).where(
        AlertObservation.alert_id == rule.id, col(AlertObservation.observed_at) > since,
        col(AlertObservation.observed_at) <= signal.at)).one())


def _passes(rule: AlertRule, value: float | None) -> bool:
    if rule.condition == "regression_detected":
        return True
    if value is None or rule.threshold is None:
        return False
    if rule.condition == "crash_free_below":
        return value < rule.threshold
    return value >= rule.threshold  # counts and crash spikes


def _suppress(session: Session, rule: AlertRule) -> None:
    """Count a signal of the incident the rule's latest firing alerted."""
    latest = (sa.select(FIRINGS.c.id).where(FIRINGS.c.alert_id == rule.id)
              .order_by(FIRINGS.c.triggered_at.desc()).limit(1).scalar_subquery())
    session.execute(sa.update(FIRINGS).where(FIRINGS.c.id == latest)
                    .values(suppressed=FIRINGS.c.suppressed + 1))


def describe(rule: AlertRule, signal: Signal, project: ProjectRef, value: float | None) -> str:
    """One sentence saying why `rule` fired."""
    d, where = signal.details, project.name or project.slug
    bug = d.get("bug") or {}
    bug_text = f"#{bug.get('number')} “{bug.get('title')}”"
    if rule.condition == "new_bug":
        if value is not None and value > 1:
            return (f"{int(value)} new bugs in {where} within {rule.window_minutes} minutes; "
                    f"the latest is {bug_text} ({bug.get('priority')}, {bug.get('category')}).")
        return f"New bug {bug_text} ({bug.get('priority')}, {bug.get('category')}) in {where}."
    if rule.condition == "new_crash_signature":
        if value is not None and value > 1:
            return (f"{int(value)} new crash signatures in {where} within "
                    f"{rule.window_minutes} minutes; the latest is bug {bug_text}.")
        return f"New crash signature in {where}: bug {bug_text}."
    if rule.condition == "crash_spike":
        return (f"Crash spike in {where}: {d.get('crashed_sessions')} of {d.get('sessions')} "
                f"sessions crashed in the last {d.get('window_minutes')} minutes "
                f"(usually about {d.get('baseline_crashed')}).")
    if rule.condition == "crash_free_below":
        version = f" (version {d['game_version']})" if d.get("game_version") else ""
        return (f"Crash-free sessions in {where}{version} fell to {d.get('crash_free_rate')} % "
                f"over the last {d.get('window_minutes')} minutes, below "
                f"{shown_number(rule.condition, rule.threshold)} %.")
    return (f"Regression detected in {where}: {d.get('kind')} in version {d.get('version')} "
            f"(previous {d.get('previous_version')}).")


def fire(session: Session, *, settings: IntegrationsSettings, project: ProjectRef,
         rule: AlertRule, signal: Signal, value: float | None) -> str | None:
    """Record a firing of `rule` and perform its actions; its id, or None when `signal` fired
    it before."""
    firing_id = str(uuid.uuid4())
    inserted = session.execute(pg_insert(FIRINGS).values(
        id=firing_id, alert_id=rule.id, project_id=project.id, condition=rule.condition,
        threshold=rule.threshold, value=value, details=signal.details,
        channels=list(rule.channels), source_event_id=signal.event_id, suppressed=0,
        triggered_at=signal.at).on_conflict_do_nothing().returning(FIRINGS.c.id)).first()
    if inserted is None:
        return None
    rule.last_fired_at = signal.at
    session.add(rule)
    triggered_at = isoformat(signal.at)
    threshold = shown_number(rule.condition, rule.threshold)
    shown_value = shown_number(rule.condition, value)
    emit(session, subjects.ALERT_TRIGGERED, ev.AlertTriggered(
        firing_id=firing_id, alert_id=rule.id, project_id=project.id, project_slug=project.slug,
        name=rule.name, condition=rule.condition, threshold=threshold, value=shown_value,
        channels=list(rule.channels), details=signal.details, triggered_at=triggered_at))
    text = describe(rule, signal, project, value)
    url = signal.url or absolute_url(
        settings, f"/api/projects/{project.slug}/alerts/{rule.id}/firings")
    outgoing = [c for c in ("webhook", "discord") if c in rule.channels]
    if outgoing:
        enqueue(session, project_id=project.id, event="alert_triggered", channels=outgoing,
                data={"id": firing_id, "alert_id": rule.id, "name": rule.name,
                      "description": text, "condition": rule.condition,
                      "threshold": threshold, "value": shown_value, "details": signal.details,
                      "triggered_at": triggered_at, "url": url})
    personal = [c for c in ("in_app", "email") if c in rule.channels]
    if personal:
        recipients = [m.user_id for m in members_with(session, project.id, signal.permission)
                      if m.user_id != signal.actor_id]
        notify(session, settings=settings, project=project, user_ids=recipients,
               channels=personal,
               message=Message(event="alert_triggered", title=f"Alert “{rule.name}” fired",
                               body=text, url=url, dedupe_key=f"alert_triggered:{firing_id}",
                               data={"alert_id": rule.id, "firing_id": firing_id,
                                     "condition": rule.condition, "threshold": threshold,
                                     "value": shown_value}))
    return firing_id


def _consider(session: Session, settings: IntegrationsSettings, project: ProjectRef,
              rule: AlertRule, signal: Signal) -> str | None:
    if not _matches(rule.filters, signal.attrs):
        return None
    cooling = rule.last_fired_at is not None and \
        signal.at < rule.last_fired_at + timedelta(minutes=rule.window_minutes)
    value = signal.value
    if rule.condition in COUNTING:
        if cooling and (rule.threshold or 1) <= 1:
            # Every match fires such a rule: this one is the incident already alerted, and
            # there is nothing worth counting (the cheap path of an alert storm).
            _suppress(session, rule)
            return None
        counted = _count(session, rule, signal)
        if counted is None:
            return None
        value = float(counted)
    if not _passes(rule, value):
        return None
    if cooling:
        _suppress(session, rule)  # the same incident: alerted already
        return None
    return fire(session, settings=settings, project=project, rule=rule, signal=signal,
                value=value)


def evaluate(*, session: Session, event: Event, settings: IntegrationsSettings) -> list[str]:
    """Check the project's enabled rules against the signals in `event`; the firings' ids."""
    signals = signals_of(event, settings)
    fired: list[str] = []
    if utcnow() - event_time(event) > STALE_AFTER:
        return fired
    for signal in signals:
        project = session.get(ProjectRef, signal.project_id)
        if project is None:
            # Deleted, or not heard of yet: either way it has no rules (they need the project).
            continue
        rules = session.exec(select(AlertRule).where(
            AlertRule.project_id == signal.project_id, AlertRule.condition == signal.condition,
            AlertRule.enabled == True)  # noqa: E712
            .order_by(col(AlertRule.id)).with_for_update()).all()
        for rule in rules:
            firing = _consider(session, settings, project, rule, signal)
            if firing is not None:
                fired.append(firing)
    return fired


ALERT_BUG_SUBJECTS = [subjects.BUG_CREATED]
ALERT_ANALYTICS_SUBJECTS = [subjects.REGRESSION_DETECTED, subjects.CRASH_SPIKE_DETECTED,
                            subjects.CRASH_FREE_RATE_DROPPED]


def dispatch(*, session: Session, event: Event, settings: IntegrationsSettings) -> None:
    """The consumers' handler."""
    evaluate(session=session, event=event, settings=settings)
