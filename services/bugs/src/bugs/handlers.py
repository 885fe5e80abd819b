"""Handlers of the auth service's user events: the users read model and account deletion.

Each handler is `(*, session, event)`, runs inside the inbox transaction (it never commits)
and is idempotent: a redelivered or replayed event leaves the same state. Events can arrive
out of order across redeliveries, so an upsert older than the row it would change is skipped,
and a deleted user is never brought back by a late `user_updated`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Session, select

from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event, utcnow
from bugnet_common.bus.inbox import PoisonMessage

from .events import emit
from .models import Attachment, Member, Project, UserRef
from .projects.service import discard_files
from .sdk.storage import AttachmentStorage
from .team.service import remove_membership, successor_for, transfer_ownership

log = logging.getLogger(__name__)
USERS = UserRef.__table__  # type: ignore[attr-defined]


def _field(event: Event, name: str) -> str:
    value = event.data.get(name)
    if not isinstance(value, str) or not value:
        raise PoisonMessage(f"{event.type} without '{name}'")
    return value


def _event_time(event: Event) -> datetime:
    try:
        return datetime.fromisoformat(event.time.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return utcnow()


def _upsert_user(session: Session, event: Event, values: dict[str, Any]) -> None:
    at = _event_time(event)
    stmt = pg_insert(USERS).values(id=_field(event, "user_id"), deleted=False, updated_at=at,
                                   **values)
    session.exec(stmt.on_conflict_do_update(
        index_elements=[USERS.c.id], set_={**values, "updated_at": at},
        where=sa.and_(USERS.c.deleted.is_(False), USERS.c.updated_at <= at)))


def user_registered(*, session: Session, event: Event) -> None:
    """Add the new user to the read model."""
    _upsert_user(session, event, {"email": _field(event, "email").lower(),
                                  "display_name": event.data.get("display_name") or ""})


def user_updated(*, session: Session, event: Event) -> None:
    """Take the user's new email, name and avatar into the read model."""
    _upsert_user(session, event, {"email": _field(event, "email").lower(),
                                  "display_name": event.data.get("display_name") or "",
                                  "avatar": event.data.get("avatar")})


def user_deleted(*, session: Session, event: Event,
                 storage: AttachmentStorage | None = None) -> None:
    """Forget a deleted account: its memberships go, projects it alone held go (with their
    attachment files when `storage` is given), projects it owned pass on; its bugs and
    comments stay, shown as "Deleted user"."""
    user_id = _field(event, "user_id")
    at = _event_time(event)
    # Keep the row (attributions point at it) but none of the person's data.
    session.exec(pg_insert(USERS).values(
        id=user_id, email="", display_name="", avatar=None, deleted=True, updated_at=at,
    ).on_conflict_do_update(index_elements=[USERS.c.id], set_={
        "email": "", "display_name": "", "avatar": None, "deleted": True, "updated_at": at}))
    memberships = session.exec(select(Member).where(Member.user_id == user_id)).all()
    for member in memberships:
        # Lock the project as the API's team changes do, so they serialize with this one.
        project = session.exec(select(Project).where(Project.id == member.project_id)
                               .with_for_update()).one()
        successor = successor_for(session, project.id, user_id)
        if successor is None:
            keys = list(session.exec(select(Attachment.storage_key)
                                     .where(Attachment.project_id == project.id)))
            session.delete(project)  # members, bugs and the rest go by cascade
            session.flush()
            if storage is not None:
                # Before the commit (a handler cannot act after it): should the commit fail,
                # the redelivery deletes the rows again, so nothing is left pointing at them.
                discard_files(storage, keys, project_id=project.id)
            emit(session, subjects.PROJECT_DELETED,
                 ev.ProjectDeleted(project_id=project.id, slug=project.slug))
            log.info("project of a deleted user removed", extra={"project_id": project.id})
            continue
        if member.role == "owner":
            transfer_ownership(session, owner=None, successor=successor)
        remove_membership(session, member)


def dispatch(*, session: Session, event: Event, storage: AttachmentStorage | None = None) -> None:
    """Route an event of the `bugs-users` consumer to its handler."""
    if event.type == subjects.USER_REGISTERED:
        user_registered(session=session, event=event)
    elif event.type == subjects.USER_UPDATED:
        user_updated(session=session, event=event)
    elif event.type == subjects.USER_DELETED:
        user_deleted(session=session, event=event, storage=storage)
    else:
        raise PoisonMessage(f"no handler for {event.type}")
