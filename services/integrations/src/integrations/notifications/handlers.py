"""Bug, comment and account events turned into notifications (worker consumers).

Each handler is `(*, session, event, settings)`, runs in the inbox transaction and is
idempotent (notifications are unique per user and dedupe key; participants per bug and user).

Who is told what (decided):
- bug_created / bug_updated with `changes.assignee`: the new assignee (`bug_assigned`);
- comment_added: the bug's participants — its reporter, its assignee and everyone who
  commented before — (`comment_added`); internal comments only those with comments.internal;
- bug_resolved: the participants (`bug_resolved`);
and never the person who did it (`actor_id`, the comment's author), never someone who is no
longer a member with bugs.view. Preferences decide the channels (service.notify).
Events older than STALE_AFTER only keep the participants up to date: a consumer replaying a
stream's history (the service's first deploy) must not notify anyone of last year's comments.

Invitations are not emailed from here: the bugs service emails the invitee itself when it
creates the invitation (bugs/team/mail.py), with the accept link only it knows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Session, col, select

from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event, utcnow
from bugnet_common.bus.inbox import PoisonMessage

from ..handlers import bug_data, event_time
from ..models import MemberRef, ProjectRef, Tombstone, UserRef
from ..settings import IntegrationsSettings
from .models import BugParticipant
from .service import Message, forget_user, notify

PARTICIPANTS = BugParticipant.__table__  # type: ignore[attr-defined]
EXCERPT_CHARS = 500
STALE_AFTER = timedelta(hours=24)


def stale(event: Event) -> bool:
    return utcnow() - event_time(event) > STALE_AFTER


def _bug(event: Event) -> dict[str, Any]:
    bug = event.data.get("bug")
    if not isinstance(bug, dict) or not isinstance(bug.get("project_id"), str) \
            or not isinstance(bug.get("id"), str):
        raise PoisonMessage(f"{event.type} without a bug")
    return bug


def _project(session: Session, project_id: str) -> ProjectRef | None:
    """The project of an event; None when it was deleted. A project not heard of yet (its
    project_created is still on its way through another consumer) is retried later."""
    project = session.get(ProjectRef, project_id)
    if project is None:
        if session.get(Tombstone, ("project", project_id)) is not None:
            return None
        raise LookupError(f"project {project_id} not in the read model yet")
    return project


def eligible(session: Session, project_id: str, user_ids: Iterable[str | None],
             *permissions: str) -> list[str]:
    """Those of `user_ids` who are members of the project with every one of `permissions`."""
    ids = [u for u in dict.fromkeys(user_ids) if isinstance(u, str) and u]
    if not ids:
        return []
    members = {m.user_id: m for m in session.exec(select(MemberRef).where(
        MemberRef.project_id == project_id, col(MemberRef.user_id).in_(ids)))}
    return [u for u in ids if u in members
            and all(p in members[u].permissions for p in permissions)]


def name_of(session: Session, user_id: Any) -> str | None:
    if not isinstance(user_id, str):
        return None
    user = session.get(UserRef, user_id)
    if user is None:
        return None
    return user.display_name or user.email.split("@", 1)[0]


def _participate(session: Session, bug: dict[str, Any], user_id: Any, reason: str) -> None:
    if isinstance(user_id, str) and user_id:
        session.execute(pg_insert(PARTICIPANTS).values(
            bug_id=bug["id"], user_id=user_id, project_id=bug["project_id"], reason=reason,
            created_at=utcnow())
            .on_conflict_do_nothing())


def participants(session: Session, bug: dict[str, Any]) -> list[str]:
    """Reporter, assignee and earlier commenters of the bug (as far as events told us)."""
    known = session.exec(select(BugParticipant.user_id).where(
        BugParticipant.bug_id == bug["id"]).order_by(col(BugParticipant.created_at))).all()
    return [u for u in [bug.get("reporter_user_id"), bug.get("assignee_id"), *known]
            if isinstance(u, str) and u]


def _label(bug: dict[str, Any]) -> str:
    return f"bug #{bug.get('number')}"


def _assigned(session: Session, settings: IntegrationsSettings, project: ProjectRef,
              bug: dict[str, Any], assignee: str, event: Event) -> None:
    actor = event.data.get("actor_id")
    if assignee == actor or stale(event):
        return
    who = name_of(session, actor)
    title = bug.get("title") or ""
    body = (f"{who} assigned you {_label(bug)} “{title}” in {project.name}." if who else
            f"{_label(bug).capitalize()} “{title}” in {project.name} was assigned to you.")
    data = bug_data(bug, settings)
    notify(session, settings=settings, project=project,
           user_ids=eligible(session, project.id, [assignee], "bugs.view"),
           message=Message(event="bug_assigned", title=f"{_label(bug).capitalize()} assigned "
                           f"to you: {title}", body=body, url=data["url"], data=data,
                           dedupe_key=f"bug_assigned:{event.id}"))


def bug_created(*, session: Session, event: Event, settings: IntegrationsSettings) -> None:
    bug = _bug(event)
    project = _project(session, bug["project_id"])
    if project is None:
        return
    _participate(session, bug, bug.get("reporter_user_id"), "reporter")
    assignee = bug.get("assignee_id")
    if isinstance(assignee, str) and assignee:
        _participate(session, bug, assignee, "assignee")
        _assigned(session, settings, project, bug, assignee, event)


def bug_updated(*, session: Session, event: Event, settings: IntegrationsSettings) -> None:
    changes = event.data.get("changes")
    change = changes.get("assignee") if isinstance(changes, dict) else None
    assignee = change.get("to") if isinstance(change, dict) else None
    if not isinstance(assignee, str) or not assignee:
        return
    bug = _bug(event)
    project = _project(session, bug["project_id"])
    if project is None:
        return
    _participate(session, bug, assignee, "assignee")
    _assigned(session, settings, project, bug, assignee, event)


def bug_resolved(*, session: Session, event: Event, settings: IntegrationsSettings) -> None:
    bug = _bug(event)
    project = _project(session, bug["project_id"])
    if project is None:
        return
    actor = event.data.get("actor_id")
    if stale(event):
        return
    who = name_of(session, actor) or "Someone"
    title = bug.get("title") or ""
    data = bug_data(bug, settings)
    recipients = [u for u in participants(session, bug) if u != actor]
    notify(session, settings=settings, project=project,
           user_ids=eligible(session, project.id, recipients, "bugs.view"),
           message=Message(event="bug_resolved",
                           title=f"{_label(bug).capitalize()} resolved: {title}",
                           body=f"{who} marked {_label(bug)} “{title}” in {project.name} as "
                                f"{bug.get('status')}.",
                           url=data["url"], data=data, dedupe_key=f"bug_resolved:{event.id}"))


def comment_added(*, session: Session, event: Event, settings: IntegrationsSettings) -> None:
    bug = _bug(event)
    project = _project(session, bug["project_id"])
    if project is None:
        return
    author = event.data.get("author_id")
    if stale(event):
        _participate(session, bug, author, "commenter")
        return
    internal = bool(event.data.get("internal"))
    needed = ("bugs.view", "comments.internal") if internal else ("bugs.view",)
    recipients = [u for u in participants(session, bug) if u != author]
    text = str(event.data.get("body") or "")
    excerpt = text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS - 1] + "…"
    who = name_of(session, author) or "Someone"
    title = bug.get("title") or ""
    comment_id = event.data.get("comment_id") or event.id
    data = bug_data(bug, settings)
    data["comment"] = {"id": comment_id, "internal": internal, "author_id": author}
    notify(session, settings=settings, project=project,
           user_ids=eligible(session, project.id, recipients, *needed),
           message=Message(event="comment_added",
                           title=f"New {'internal ' if internal else ''}comment on "
                                 f"{_label(bug)}: {title}",
                           body=f"{who} commented on {_label(bug)} “{title}” in "
                                f"{project.name}:\n\n{excerpt}",
                           url=data["url"], data=data, dedupe_key=f"comment_added:{comment_id}"))
    _participate(session, bug, author, "commenter")


def bug_deleted(*, session: Session, event: Event, settings: IntegrationsSettings) -> None:
    bug = _bug(event)
    session.execute(sa.delete(PARTICIPANTS).where(PARTICIPANTS.c.bug_id == bug["id"]))


def user_deleted(*, session: Session, event: Event, settings: IntegrationsSettings) -> None:
    user_id = event.data.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        raise PoisonMessage("user_deleted without 'user_id'")
    forget_user(session, user_id)


HANDLERS: dict[str, Callable[..., None]] = {
    subjects.BUG_CREATED: bug_created,
    subjects.BUG_UPDATED: bug_updated,
    subjects.BUG_RESOLVED: bug_resolved,
    subjects.BUG_DELETED: bug_deleted,
    subjects.COMMENT_ADDED: comment_added,
    subjects.USER_DELETED: user_deleted,
}
BUG_SUBJECTS = [subjects.BUG_CREATED, subjects.BUG_UPDATED, subjects.BUG_RESOLVED,
                subjects.BUG_DELETED, subjects.COMMENT_ADDED]
USER_SUBJECTS = [subjects.USER_DELETED]


def dispatch(*, session: Session, event: Event, settings: IntegrationsSettings) -> None:
    """Route a notification-worthy event to its handler."""
    handler = HANDLERS.get(event.type)
    if handler is None:
        raise PoisonMessage(f"no handler for {event.type}")
    handler(session=session, event=event, settings=settings)
