"""The bugs service's outgoing events, staged in the caller's transaction (outbox)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from bugnet_common.bus import events as ev
from bugnet_common.bus.events import Event, payload
from bugnet_common.bus.outbox import add_event

from .models import BUS, Bug, Project
from .views import iso


def emit(session: Session, subject: str, data: Any) -> None:
    add_event(session, BUS, Event(type=subject, source="bugs", data=payload(data)))


def snapshot(bug: Bug, project: Project) -> ev.BugSnapshot:
    return ev.BugSnapshot(
        id=bug.id, project_id=project.id, project_slug=project.slug, number=bug.number,
        title=bug.title, category=bug.category, priority=bug.priority, status=bug.status,
        source=bug.source, is_public=bug.is_public, platform=bug.platform,
        game_version=bug.game_version, fingerprint=bug.fingerprint,
        assignee_id=bug.assignee_id, reporter_user_id=bug.reporter_user_id,
        created_at=iso(bug.created_at) or "", resolved_at=iso(bug.resolved_at),
        url=f"/api/projects/{project.slug}/bugs/{bug.id}")
