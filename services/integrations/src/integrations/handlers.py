"""Reactions to other services' events.

Two families, each `(*, session, event)`, run inside the inbox transaction (never commit) and
idempotent: a redelivered or replayed event leaves the same state.

- Read models (`readmodel_dispatch`): projects and members from bugs, users from auth. An
  upsert older than the row it would change is skipped (events can arrive out of order across
  redeliveries) and a tombstoned (deleted) project or user is never brought back.
- Outgoing events (`event_dispatch`): bug, comment and regression events become webhook and
  Discord deliveries through `dispatch.enqueue`. Internal comments are never sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Session, select

from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event, utcnow
from bugnet_common.bus.inbox import PoisonMessage

from .dispatch import enqueue
from .models import MemberRef, ProjectRef, Tombstone, UserRef
from .settings import IntegrationsSettings

PROJECTS = ProjectRef.__table__  # type: ignore[attr-defined]
MEMBERS = MemberRef.__table__  # type: ignore[attr-defined]
USERS = UserRef.__table__  # type: ignore[attr-defined]
TOMBSTONES = Tombstone.__table__  # type: ignore[attr-defined]


def _field(data: dict[str, Any], name: str, event: Event) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise PoisonMessage(f"{event.type} without '{name}'")
    return value


def event_time(event: Event) -> datetime:
    try:
        return datetime.fromisoformat(event.time.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return utcnow()


def _tombstoned(session: Session, kind: str, id_: str) -> bool:
    return session.get(Tombstone, (kind, id_)) is not None


def _tombstone(session: Session, kind: str, id_: str, at: datetime) -> None:
    session.exec(pg_insert(TOMBSTONES).values(kind=kind, id=id_, deleted_at=at)
                 .on_conflict_do_nothing())  # type: ignore[call-overload]


# ---- read models ----------------------------------------------------------------------------

def project_changed(*, session: Session, event: Event) -> None:
    """project_created / project_updated: the project's slug and name."""
    project_id = _field(event.data, "project_id", event)
    if _tombstoned(session, "project", project_id):
        return
    at = event_time(event)
    values = {"slug": _field(event.data, "slug", event), "name": event.data.get("name") or ""}
    session.exec(pg_insert(PROJECTS).values(id=project_id, updated_at=at, **values)  # type: ignore[call-overload]
                 .on_conflict_do_update(index_elements=[PROJECTS.c.id],
                                        set_={**values, "updated_at": at},
                                        where=PROJECTS.c.updated_at <= at))


def project_deleted(*, session: Session, event: Event) -> None:
    """Forget the project and, by cascade, everything this service holds for it."""
    project_id = _field(event.data, "project_id", event)
    _tombstone(session, "project", project_id, event_time(event))
    session.exec(sa.delete(PROJECTS).where(PROJECTS.c.id == project_id))  # type: ignore[call-overload]


def member_changed(*, session: Session, event: Event) -> None:
    """member_added / member_updated: role and effective permissions."""
    project_id = _field(event.data, "project_id", event)
    user_id = _field(event.data, "user_id", event)
    if _tombstoned(session, "project", project_id):
        return
    if session.get(ProjectRef, project_id) is None:
        # project_created not applied yet (a redelivery overtook it): retry later.
        raise LookupError(f"project {project_id} not in the read model yet")
    at = event_time(event)
    permissions = event.data.get("permissions")
    values = {"role": _field(event.data, "role", event),
              "permissions": sorted(p for p in permissions or [] if isinstance(p, str))}
    session.exec(pg_insert(MEMBERS).values(project_id=project_id, user_id=user_id,  # type: ignore[call-overload]
                                           updated_at=at, **values)
                 .on_conflict_do_update(index_elements=[MEMBERS.c.project_id, MEMBERS.c.user_id],
                                        set_={**values, "updated_at": at},
                                        where=MEMBERS.c.updated_at <= at))


def member_removed(*, session: Session, event: Event) -> None:
    project_id = _field(event.data, "project_id", event)
    user_id = _field(event.data, "user_id", event)
    at = event_time(event)
    session.exec(sa.delete(MEMBERS).where(  # type: ignore[call-overload]
        MEMBERS.c.project_id == project_id, MEMBERS.c.user_id == user_id,
        MEMBERS.c.updated_at <= at))


def user_changed(*, session: Session, event: Event) -> None:
    """user_registered / user_updated: email and display name."""
    user_id = _field(event.data, "user_id", event)
    if _tombstoned(session, "user", user_id):
        return
    at = event_time(event)
    values = {"email": _field(event.data, "email", event).lower(),
              "display_name": event.data.get("display_name") or ""}
    session.exec(pg_insert(USERS).values(id=user_id, updated_at=at, **values)  # type: ignore[call-overload]
                 .on_conflict_do_update(index_elements=[USERS.c.id],
                                        set_={**values, "updated_at": at},
                                        where=USERS.c.updated_at <= at))


def user_deleted(*, session: Session, event: Event) -> None:
    """Remove the user (their memberships go with bugs' member_removed events)."""
    user_id = _field(event.data, "user_id", event)
    _tombstone(session, "user", user_id, event_time(event))
    session.exec(sa.delete(USERS).where(USERS.c.id == user_id))  # type: ignore[call-overload]


READMODEL_HANDLERS = {
    subjects.PROJECT_CREATED: project_changed,
    subjects.PROJECT_UPDATED: project_changed,
    subjects.PROJECT_DELETED: project_deleted,
    subjects.MEMBER_ADDED: member_changed,
    subjects.MEMBER_UPDATED: member_changed,
    subjects.MEMBER_REMOVED: member_removed,
    subjects.USER_REGISTERED: user_changed,
    subjects.USER_UPDATED: user_changed,
    subjects.USER_DELETED: user_deleted,
}


def readmodel_dispatch(*, session: Session, event: Event) -> None:
    """Route a read-model event to its handler."""
    handler = READMODEL_HANDLERS.get(event.type)
    if handler is None:
        raise PoisonMessage(f"no handler for {event.type}")
    handler(session=session, event=event)


# ---- outgoing events ------------------------------------------------------------------------

def absolute_url(settings: IntegrationsSettings, path: Any) -> str | None:
    if not isinstance(path, str) or not path:
        return None
    if path.startswith(("http://", "https://")):
        return path
    return settings.public_base_url.rstrip("/") + "/" + path.lstrip("/")


def bug_data(bug: dict[str, Any], settings: IntegrationsSettings) -> dict[str, Any]:
    """`{id, number, title, category, priority, status, url}` of a BugSnapshot payload."""
    return {"id": bug.get("id"), "number": bug.get("number"), "title": bug.get("title"),
            "category": bug.get("category"), "priority": bug.get("priority"),
            "status": bug.get("status"), "url": absolute_url(settings, bug.get("url"))}


def _bug(event: Event) -> dict[str, Any]:
    bug = event.data.get("bug")
    if not isinstance(bug, dict) or not isinstance(bug.get("project_id"), str):
        raise PoisonMessage(f"{event.type} without a bug")
    return bug


def bug_event(*, session: Session, event: Event, settings: IntegrationsSettings) -> None:
    """bug_created / bug_updated / bug_resolved → deliveries."""
    bug = _bug(event)
    name = event.type.rsplit(".", 1)[-1]
    data = bug_data(bug, settings)
    if name != "bug_created":
        changes = event.data.get("changes")
        data["changes"] = changes if isinstance(changes, dict) else {}
    enqueue(session, project_id=bug["project_id"], event=name, data=data)


def comment_added(*, session: Session, event: Event, settings: IntegrationsSettings) -> None:
    """comment_added → deliveries; internal comments are never sent out."""
    if event.data.get("internal"):
        return
    bug = _bug(event)
    author_id = event.data.get("author_id")
    author = None
    if isinstance(author_id, str):
        user = session.get(UserRef, author_id)
        author = {"id": author_id, "display_name": user.display_name if user else None}
    data = bug_data(bug, settings)
    data["comment"] = {"id": event.data.get("comment_id"), "body": event.data.get("body") or "",
                       "author": author}
    enqueue(session, project_id=bug["project_id"], event="comment_added", data=data)


def regression_detected(*, session: Session, event: Event,
                        settings: IntegrationsSettings) -> None:
    """regression_detected (analytics) → deliveries."""
    project_id = _field(event.data, "project_id", event)
    d = event.data
    data: dict[str, Any] = {
        "id": d.get("regression_id"), "kind": d.get("kind"), "version": d.get("version"),
        "previous_version": d.get("previous_version"), "bug_id": d.get("bug_id"),
        "details": d.get("details") or {}, "detected_at": d.get("detected_at")}
    slug = d.get("project_slug")
    if isinstance(d.get("bug_id"), str) and isinstance(slug, str):
        data["url"] = absolute_url(settings, f"/api/projects/{slug}/bugs/{d['bug_id']}")
    enqueue(session, project_id=project_id, event="regression_detected", data=data)


EVENT_HANDLERS = {
    subjects.BUG_CREATED: bug_event,
    subjects.BUG_UPDATED: bug_event,
    subjects.BUG_RESOLVED: bug_event,
    subjects.COMMENT_ADDED: comment_added,
    subjects.REGRESSION_DETECTED: regression_detected,
}


def event_dispatch(*, session: Session, event: Event, settings: IntegrationsSettings) -> None:
    """Route an outgoing-event source to its handler."""
    handler = EVENT_HANDLERS.get(event.type)
    if handler is None:
        raise PoisonMessage(f"no handler for {event.type}")
    handler(session=session, event=event, settings=settings)


def members_with(session: Session, project_id: str, permission: str) -> list[MemberRef]:
    """The project's members holding `permission` (for notifications)."""
    rows = session.exec(select(MemberRef).where(MemberRef.project_id == project_id)).all()
    return [m for m in rows if permission in m.permissions]
