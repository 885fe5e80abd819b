"""Use cases of notifications: staging them for the people who want them, the in-app list,
reading them, and preferences.

`notify` is the one way anything here tells users something (event handlers, the alert
evaluator). It runs inside the caller's transaction and only adds rows: in-app
`notifications`, and `outgoing_emails` that the mailer sends after the commit (mail.py). It
never checks who may know about the thing: callers pass recipients they already filtered by
membership and permission; `notify` applies preferences.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, NotRequired, cast

import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Session, col, func, select
from typing_extensions import TypedDict

from bugnet_common import errors
from bugnet_common.bus.events import utcnow
from bugnet_common.openapi import Timestamp, Uuid
from bugnet_common.web import Page

from ..access import project_by_slug
from ..models import MemberRef, ProjectRef, UserRef
from ..settings import IntegrationsSettings
from ..views import iso
from . import mail
from .models import (
    BugParticipant,
    Notification,
    NotificationPreference,
    NotificationProjectPreference,
    OutgoingEmail,
)
from .preferences import CHANNELS, EVENTS, Event, effective, maps_of, recipients_wanting
from .schemas import ChannelMapsIn, PreferencesIn

NOTIFICATIONS = Notification.__table__  # type: ignore[attr-defined]
EMAILS = OutgoingEmail.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Message:
    """What to tell people: one notification, the same for every recipient."""

    event: str  # one of preferences.EVENTS
    title: str
    body: str
    url: str | None
    dedupe_key: str  # the same key twice for one user stages one notification
    data: dict[str, Any] = field(default_factory=dict)


def notify(session: Session, *, settings: IntegrationsSettings, project: ProjectRef,
           user_ids: Iterable[str], message: Message,
           channels: Collection[str] = ("in_app", "email")) -> dict[str, list[str]]:
    """Stage `message` for those of `user_ids` who want it, per channel; who got what."""
    ids = list(dict.fromkeys(user_ids))
    staged: dict[str, list[str]] = {"in_app": [], "email": []}
    if not ids:
        return staged
    now = utcnow()
    if "in_app" in channels:
        who = recipients_wanting(session, user_ids=ids, project_id=project.id,
                                 channel="in_app", event=message.event)
        if who:
            session.execute(pg_insert(NOTIFICATIONS).values([
                {"id": str(uuid.uuid4()), "user_id": user_id, "project_id": project.id,
                 "event": message.event, "title": message.title, "body": message.body,
                 "url": message.url, "data": message.data, "dedupe_key": message.dedupe_key,
                 "created_at": now} for user_id in who]).on_conflict_do_nothing())
            staged["in_app"] = who
    if "email" in channels and settings.smtp_host:
        who = recipients_wanting(session, user_ids=ids, project_id=project.id,
                                 channel="email", event=message.event)
        users = {u.id: u for u in session.exec(select(UserRef).where(col(UserRef.id).in_(who)))}
        rows = []
        for user_id in who:
            user = users.get(user_id)
            if user is None or not user.email:
                continue  # not in the users read model (yet): no address to write to
            subject, body = mail.compose(settings, project=project, message=message, user=user)
            rows.append({"id": str(uuid.uuid4()), "user_id": user_id, "project_id": project.id,
                         "event": message.event, "to_address": user.email, "subject": subject,
                         "body": body, "dedupe_key": message.dedupe_key, "status": "pending",
                         "attempts": 0, "created_at": now, "next_attempt_at": now})
            staged["email"].append(user_id)
        if rows:
            session.execute(pg_insert(EMAILS).values(rows).on_conflict_do_nothing())
    return staged


# ---- the in-app list -------------------------------------------------------------------------

class NotificationProjectOut(TypedDict):
    id: Uuid
    slug: str
    name: str


class NotificationOut(TypedDict):
    id: Uuid
    event: Event
    project: NotificationProjectOut | None
    title: str
    body: str
    url: str | None
    data: Annotated[dict[str, Any], Field(
        description="The event's particulars (the bug, the alert...).")]
    read: bool
    read_at: Timestamp | None
    created_at: Timestamp


class NotificationsPageMeta(TypedDict):
    page: int
    limit: int
    total: int
    pages: int
    unread: Annotated[int, Field(
        description="Every unread notification of the user, whatever the filter.")]


class ReadAllOut(TypedDict):
    updated: Annotated[int, Field(description="How many notifications were unread.")]


ChannelMapOut = dict[str, bool]  # event -> wanted


class ProjectPreferencesOut(TypedDict):
    """A project's overrides: only the channels with some."""

    email: NotRequired[ChannelMapOut]
    in_app: NotRequired[ChannelMapOut]
    discord_dm: NotRequired[ChannelMapOut]


class PreferencesOut(TypedDict):
    email: ChannelMapOut
    in_app: ChannelMapOut
    discord_dm: ChannelMapOut
    projects: Annotated[dict[str, ProjectPreferencesOut], Field(
        description="Project slug -> that project's overrides.")]
    events: list[Event]
    updated_at: Timestamp | None


def notification_out(n: Notification, project: ProjectRef | None) -> NotificationOut:
    return {"id": n.id, "event": cast(Event, n.event),
            "project": None if project is None else {"id": project.id, "slug": project.slug,
                                                     "name": project.name},
            "title": n.title, "body": n.body, "url": n.url, "data": n.data,
            "read": n.read_at is not None, "read_at": iso(n.read_at),
            "created_at": iso(n.created_at)}


def list_notifications(*, session: Session, user_id: str, page: Page, unread: bool | None
                       ) -> tuple[list[NotificationOut], int, int]:
    """The user's notifications, unread first, then newest first; (page, total, unread)."""
    where: list[Any] = [Notification.user_id == user_id]
    if unread is True:
        where.append(col(Notification.read_at).is_(None))
    elif unread is False:
        where.append(col(Notification.read_at).is_not(None))
    total = session.exec(select(func.count()).select_from(Notification).where(*where)).one()
    unread_count = session.exec(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, col(Notification.read_at).is_(None))).one()
    rows = session.exec(
        select(Notification, ProjectRef)
        .join(ProjectRef, col(ProjectRef.id) == Notification.project_id, isouter=True)
        .where(*where)
        .order_by(sa.case((col(Notification.read_at).is_(None), 0), else_=1),
                  col(Notification.created_at).desc(), col(Notification.id).desc())
        .offset(page.offset).limit(page.limit)).all()
    return [notification_out(n, p) for n, p in rows], int(total), int(unread_count)


def _own(session: Session, user_id: str, notification_id: str) -> Notification:
    n = session.get(Notification, notification_id) if len(notification_id) <= 36 else None
    if n is None or n.user_id != user_id:
        raise errors.NotFound("Notification not found")
    return n


def mark_read(*, session: Session, user_id: str, notification_id: str) -> NotificationOut:
    """Mark one of the user's notifications read (again: no change); 404 for anyone else's."""
    n = _own(session, user_id, notification_id)
    if n.read_at is None:
        n.read_at = utcnow()
        session.add(n)
        session.commit()
    return notification_out(n, session.get(ProjectRef, n.project_id))


def mark_all_read(*, session: Session, user_id: str) -> int:
    """Mark every unread notification of the user read; how many were."""
    result = session.execute(sa.update(NOTIFICATIONS).where(
        NOTIFICATIONS.c.user_id == user_id, NOTIFICATIONS.c.read_at.is_(None))
        .values(read_at=utcnow()))
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


# ---- preferences ----------------------------------------------------------------------------

def preferences_out(session: Session, user_id: str) -> PreferencesOut:
    """The user's effective global choices and their overrides in projects they belong to."""
    row = session.get(NotificationPreference, user_id)
    choices = effective(maps_of(row))
    projects: dict[str, ProjectPreferencesOut] = {}
    overrides = session.exec(
        select(NotificationProjectPreference, ProjectRef)
        .join(ProjectRef, col(ProjectRef.id) == NotificationProjectPreference.project_id)
        .join(MemberRef, sa.and_(col(MemberRef.project_id) == ProjectRef.id,
                                 col(MemberRef.user_id) == NotificationProjectPreference.user_id))
        .where(NotificationProjectPreference.user_id == user_id)
        .order_by(col(ProjectRef.slug))).all()
    for override, project in overrides:
        projects[project.slug] = cast(ProjectPreferencesOut, {
            channel: maps for channel, maps in maps_of(override).items() if maps})
    return {"email": choices["email"], "in_app": choices["in_app"],
            "discord_dm": choices["discord_dm"], "projects": projects,
            "events": cast(list[Event], list(EVENTS)),
            "updated_at": iso(row.updated_at) if row is not None else None}


def _merged(current: dict[str, bool], changes: dict[str, bool | None]) -> dict[str, bool]:
    merged = dict(current)
    for event, value in changes.items():
        if value is None:
            merged.pop(event, None)
        else:
            merged[event] = value
    return merged


def _apply(row: NotificationPreference | NotificationProjectPreference,
           maps: ChannelMapsIn) -> None:
    for channel, changes in maps.given().items():
        # A new dict, not an in-place change: JSONB columns track assignment only.
        setattr(row, channel, _merged(getattr(row, channel), changes))


def update_preferences(*, session: Session, user_id: str, data: PreferencesIn
                       ) -> PreferencesOut:
    """Merge the given choices into the user's preferences (see schemas.py for the rules)."""
    now = utcnow()
    if data.given():
        row = session.get(NotificationPreference, user_id) \
            or NotificationPreference(user_id=user_id)
        _apply(row, data)
        row.updated_at = now
        session.add(row)
    for slug, maps in (data.projects or {}).items():
        project = project_by_slug(session, slug)
        if project is None or session.get(MemberRef, (project.id, user_id)) is None:
            name = f"projects.{slug}"
            msg = "is not a project you are a member of"
            raise errors.ValidationFailed(f"Invalid '{name}': {msg}", details={name: msg})
        existing = session.get(NotificationProjectPreference, (user_id, project.id))
        if maps is None:
            if existing is not None:
                session.delete(existing)
            continue
        override = existing or NotificationProjectPreference(user_id=user_id,
                                                              project_id=project.id)
        _apply(override, maps)
        if any(getattr(override, channel) for channel in CHANNELS):
            override.updated_at = now
            session.add(override)
        elif existing is not None:
            session.delete(existing)
    if data.projects and not data.given():
        # Touch the global row so `updated_at` says when preferences last changed.
        row = session.get(NotificationPreference, user_id) \
            or NotificationPreference(user_id=user_id)
        row.updated_at = now
        session.add(row)
    session.commit()
    return preferences_out(session, user_id)


# ---- users leaving --------------------------------------------------------------------------

def forget_user(session: Session, user_id: str) -> None:
    """A deleted account: its preferences, notifications, participations and mail."""
    for model in (NotificationPreference, NotificationProjectPreference, Notification,
                  BugParticipant):
        table = model.__table__  # type: ignore[union-attr]
        session.execute(sa.delete(table).where(table.c.user_id == user_id))
    session.execute(sa.delete(EMAILS).where(EMAILS.c.user_id == user_id))
