"""Use cases on bugs, their comments, activity and votes. Each is one transaction with its
outbox events.

Invariants kept here:
- `bugs.search_text` is title + description + steps + every comment body, recomputed whenever
  one of them changes (`refresh_search_text`).
- Every change of a field writes one activity row and lands in the `bug_updated` event's
  `changes`; entering resolved/closed stamps `resolved_at` (and the version it was fixed in)
  and also emits `bug_resolved`; leaving those statuses clears both.
- `bugs.votes` equals the bug's rows in `votes`: a vote row and the counter move together.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, func, select

from bugnet_common import errors
from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects
from bugnet_common.bus.events import utcnow
from bugnet_common.web import Page

from ..access import Access, project_by_slug
from ..enums import FIXED_STATUSES
from ..events import emit, snapshot
from ..models import Activity, Attachment, Bug, Comment, Member, Project, Tracker, UserRef, Vote
from ..views import LabelBrief, labels_by_bug, users_by_id
from . import search
from .schemas import BugFilters, BugIn, BugPatch, BulkIn, CommentIn, is_uuid

DETAIL_ACTIVITY = 50  # GET /bugs/{id} shows the latest entries; /activity pages through all


def search_text(bug: Bug, comments: str = "") -> str:
    """What `search` and `similar` match: title, description, steps and comment bodies."""
    return "\n".join(part for part in (bug.title, bug.description, bug.steps, comments) if part)


def next_number(session: Session, project_id: str) -> int:
    """Draw the project's next bug number (the UPDATE row-locks the project until commit)."""
    return int(session.execute(
        sa.text("UPDATE projects SET bug_seq = bug_seq + 1 WHERE id = :id RETURNING bug_seq"),
        {"id": project_id}).scalar_one())


def record(session: Session, *, bug_id: str, actor_id: str | None, action: str,
           field: str | None = None, from_value: object = None, to_value: object = None,
           at: datetime | None = None) -> None:
    session.add(Activity(id=str(uuid.uuid4()), bug_id=bug_id, actor_id=actor_id, action=action,
                         field=field,
                         from_value=None if from_value is None else str(from_value),
                         to_value=None if to_value is None else str(to_value),
                         created_at=at or utcnow()))


def new_bug(session: Session, *, project: Project, data: BugIn, source: str,
            reporter_user_id: str | None, fingerprint: str | None = None,
            player_key: str | None = None) -> Bug:
    """Stage a new bug with its number, activity entry and `bug_created` event (no commit).
    `player_key`: a crash's first reporter, carried by the event for the consumers' counts."""
    now = utcnow()
    bug = Bug(id=str(uuid.uuid4()), project_id=project.id,
              number=next_number(session, project.id), source=source,
              reporter_user_id=reporter_user_id, fingerprint=fingerprint,
              first_seen_version=data.game_version, last_seen_version=data.game_version,
              platforms=[data.platform] if data.platform else [],
              versions=[data.game_version] if data.game_version else [],
              created_at=now, updated_at=now, last_seen_at=now,
              **data.model_dump())
    bug.search_text = search_text(bug)
    session.add(bug)
    # Flushed before its activity row: without relationships the unit of work does not order
    # the two inserts by their foreign key.
    session.flush()
    record(session, bug_id=bug.id, actor_id=reporter_user_id, action="created", at=now)
    session.flush()
    emit(session, subjects.BUG_CREATED, ev.BugChanged(bug=snapshot(bug, project),
                                                      actor_id=reporter_user_id,
                                                      player_key=player_key))
    return bug


def create_bug(*, session: Session, project: Project, data: BugIn, source: str,
               reporter_user_id: str | None) -> Bug:
    """File a bug in `project`."""
    bug = new_bug(session, project=project, data=data, source=source,
                  reporter_user_id=reporter_user_id)
    session.commit()
    return bug


# ---- reading ---------------------------------------------------------------------------------

def find_bug(session: Session, project: Project, bug_id: str, *, for_update: bool = False) -> Bug:
    """The bug `bug_id` of `project`; 404 for a malformed id or another project's bug."""
    if not is_uuid(bug_id):
        raise errors.NotFound("Bug not found")
    query = select(Bug).where(Bug.id == bug_id.lower(), Bug.project_id == project.id)
    if for_update:
        query = query.with_for_update()
    bug = session.exec(query).first()
    if bug is None:
        raise errors.NotFound("Bug not found")
    return bug


@dataclass(frozen=True)
class BugDetail:
    bug: Bug
    labels: list[LabelBrief]
    comments: list[Comment]
    activity: list[Activity]
    attachments: list[Attachment]
    users: dict[str, UserRef]


def get_bug(*, session: Session, project: Project, bug_id: str) -> BugDetail:
    """A bug with its comments (internal ones too), labels, latest activity and attachments."""
    bug = find_bug(session, project, bug_id)
    comments = list(session.exec(select(Comment).where(Comment.bug_id == bug.id)
                                 .order_by(col(Comment.created_at), col(Comment.id))))
    activity = list(session.exec(select(Activity).where(Activity.bug_id == bug.id)
                                 .order_by(col(Activity.created_at).desc(), col(Activity.id).desc())
                                 .limit(DETAIL_ACTIVITY)))
    attachments = list(session.exec(select(Attachment).where(Attachment.bug_id == bug.id)
                                    .order_by(col(Attachment.created_at), col(Attachment.id))))
    users = users_by_id(session, [bug.assignee_id, bug.reporter_user_id,
                                  *(c.author_id for c in comments), *(a.actor_id for a in activity)])
    return BugDetail(bug=bug, labels=labels_by_bug(session, [bug.id])[bug.id], comments=comments,
                     activity=activity, attachments=attachments, users=users)


def list_bugs(*, session: Session, project: Project, filters: BugFilters,
              page: Page) -> search.ListResult:
    """One page of the project's bugs matching `filters`, and how many match in all."""
    return search.list_bugs(session, project_id=project.id, filters=filters, page=page)


def list_activity(*, session: Session, project: Project, bug_id: str,
                  page: Page) -> tuple[list[Activity], int, dict[str, UserRef]]:
    """A bug's activity, newest first, one page at a time, with the people it names."""
    bug = find_bug(session, project, bug_id)
    total = session.exec(select(func.count()).select_from(Activity)
                         .where(Activity.bug_id == bug.id)).one()
    rows = list(session.exec(select(Activity).where(Activity.bug_id == bug.id)
                             .order_by(col(Activity.created_at).desc(), col(Activity.id).desc())
                             .offset(page.offset).limit(page.limit)))
    return rows, int(total), users_by_id(session, [a.actor_id for a in rows])


def similar_bugs(*, session: Session, project: Project, title: str,
                 description: str = "", limit: int = 10) -> list[tuple[Bug, float]]:
    """The project's bugs most like a title and description, best first, scored in [0, 1]."""
    return search.similar(session, project_id=project.id, title=title, description=description,
                          limit=limit)


# ---- changing --------------------------------------------------------------------------------

def refresh_search_text(session: Session, bug: Bug) -> None:
    bodies = session.exec(select(Comment.body).where(Comment.bug_id == bug.id)
                          .order_by(col(Comment.created_at), col(Comment.id))).all()
    bug.search_text = search_text(bug, "\n".join(bodies))


def _shown(value: object) -> object:
    """A value as an activity row stores it (booleans as JSON spells them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


_COLUMN = {"assignee": "assignee_id"}
_SEARCHED = frozenset({"title", "description", "steps"})


def _check_assignee(session: Session, project: Project, user_id: str | None) -> None:
    if user_id is not None and session.get(Member, (project.id, user_id)) is None:
        msg = "must be a member of this project (or null)"
        raise errors.ValidationFailed(f"Invalid 'assignee': {msg}", details={"assignee": msg})


def _apply(session: Session, access: Access, bug: Bug, wanted: dict[str, object],
           now: datetime) -> dict[str, dict[str, Any]]:
    """Set the fields that differ, with their activity rows and the resolved_at bookkeeping;
    the changes as {field: {from, to}}. Changing the assignee needs bugs.assign."""
    changes: dict[str, dict[str, Any]] = {}
    for name, value in wanted.items():
        column = _COLUMN.get(name, name)
        before = getattr(bug, column)
        if before == value:
            continue
        if name == "assignee":
            access.require("bugs.assign")
            _check_assignee(session, access.project, value if isinstance(value, str) else None)
        setattr(bug, column, value)
        changes[name] = {"from": before, "to": value}
        record(session, bug_id=bug.id, actor_id=access.user_id, action="changed", field=name,
               from_value=_shown(before), to_value=_shown(value), at=now)
    if not changes:
        return changes
    if "status" in changes:
        was_fixed = changes["status"]["from"] in FIXED_STATUSES
        if bug.status in FIXED_STATUSES and not was_fixed:
            bug.resolved_at = now
            bug.resolved_in_version = bug.last_seen_version
        elif bug.status not in FIXED_STATUSES and was_fixed:
            bug.resolved_at = None
            bug.resolved_in_version = None
    if _SEARCHED & changes.keys():
        refresh_search_text(session, bug)
    bug.updated_at = now
    return changes


def _emit_changes(session: Session, project: Project, bug: Bug, changes: dict[str, dict[str, Any]],
                  actor_id: str) -> None:
    snap = snapshot(bug, project)
    emit(session, subjects.BUG_UPDATED, ev.BugChanged(bug=snap, changes=changes, actor_id=actor_id))
    status = changes.get("status")
    if status and bug.status in FIXED_STATUSES and status["from"] not in FIXED_STATUSES:
        emit(session, subjects.BUG_RESOLVED, ev.BugChanged(bug=snap, changes=changes,
                                                           actor_id=actor_id))


def update_bug(*, session: Session, access: Access, bug_id: str, data: BugPatch) -> Bug:
    """Change a bug's fields; one activity row per changed field, `bug_updated` (and
    `bug_resolved` when it enters resolved/closed)."""
    bug = find_bug(session, access.project, bug_id, for_update=True)
    changes = _apply(session, access, bug, data.changes(), utcnow())
    if changes:
        _emit_changes(session, access.project, bug, changes, access.user_id)
    session.commit()
    return bug


def bulk_update(*, session: Session, access: Access, data: BulkIn) -> int:
    """Apply one change to many bugs of the project: all of them or none (404 naming the first
    id that is not this project's)."""
    wanted = data.changes()
    if not wanted:
        msg = "send at least one of status, priority, assignee"
        raise errors.ValidationFailed(f"Nothing to change: {msg}", details={"body": msg})
    ids = sorted(set(data.bug_ids))
    # Locked in id order, so two bulk requests over overlapping bugs cannot deadlock.
    bugs = list(session.exec(select(Bug).where(Bug.project_id == access.project.id,
                                               col(Bug.id).in_(ids))
                             .order_by(col(Bug.id)).with_for_update()))
    found = {b.id for b in bugs}
    missing = [i for i in data.bug_ids if i not in found]
    if missing:
        session.rollback()
        raise errors.NotFound(f"Bug not found: {missing[0]}", details={"bug_ids": missing[:20]})
    now = utcnow()
    for bug in bugs:
        changes = _apply(session, access, bug, wanted, now)
        if changes:
            _emit_changes(session, access.project, bug, changes, access.user_id)
    session.commit()
    return len(bugs)


def delete_bug(*, session: Session, access: Access, bug_id: str) -> None:
    """Delete a bug with everything on it; `bug_deleted` carries its last snapshot."""
    bug = find_bug(session, access.project, bug_id, for_update=True)
    emit(session, subjects.BUG_DELETED, ev.BugChanged(bug=snapshot(bug, access.project),
                                                      actor_id=access.user_id))
    session.delete(bug)
    session.commit()


def add_comment(*, session: Session, access: Access, bug_id: str, data: CommentIn) -> Comment:
    """Comment on a bug (internal comments need comments.internal); `comment_added`."""
    if data.internal:
        access.require("comments.internal")
    bug = find_bug(session, access.project, bug_id, for_update=True)
    now = utcnow()
    comment = Comment(id=str(uuid.uuid4()), bug_id=bug.id, author_id=access.user_id,
                      body=data.body, internal=data.internal, created_at=now)
    session.add(comment)
    session.flush()
    refresh_search_text(session, bug)
    bug.updated_at = now
    record(session, bug_id=bug.id, actor_id=access.user_id, action="commented",
           to_value=comment.id, at=now)
    emit(session, subjects.COMMENT_ADDED, ev.CommentAdded(
        bug=snapshot(bug, access.project), comment_id=comment.id, body=comment.body,
        internal=comment.internal, author_id=access.user_id))
    session.commit()
    return comment


def may_vote(session: Session, project: Project, bug: Bug, user_id: str | None) -> bool:
    """Members vote on any bug; anyone else only on a public bug of an enabled tracker that
    allows voting."""
    if user_id is not None and session.get(Member, (project.id, user_id)) is not None:
        return True
    tracker = session.get(Tracker, project.id)
    return bool(bug.is_public and tracker is not None and tracker.enabled and tracker.allow_voting)


def sees_project(session: Session, project: Project, user_id: str | None) -> bool:
    """Members see their project; anyone else only through its enabled public tracker."""
    if user_id is not None and session.get(Member, (project.id, user_id)) is not None:
        return True
    tracker = session.get(Tracker, project.id)
    return bool(tracker is not None and tracker.enabled)


def cast_vote(*, session: Session, bug: Bug, voter_key: str) -> int:
    """Count `voter_key`'s vote on `bug` once and return the bug's votes; staged, the caller
    commits. Shared by the dashboard upvote and the public tracker's vote."""
    inserted = session.execute(
        pg_insert(Vote).values(bug_id=bug.id, voter_key=voter_key, created_at=utcnow())
        .on_conflict_do_nothing().returning(col(Vote.bug_id))).first()
    if inserted is None:  # this voter already counted; concurrent repeats end up here too
        votes = session.execute(sa.select(col(Bug.votes)).where(col(Bug.id) == bug.id)).scalar_one()
    else:
        votes = session.execute(sa.update(Bug).where(col(Bug.id) == bug.id)
                                .values(votes=col(Bug.votes) + 1)
                                .returning(col(Bug.votes))).scalar_one()
    # The row was changed by SQL: record the value as loaded, so no stale write follows.
    set_committed_value(bug, "votes", votes)
    return int(votes)


def upvote(*, session: Session, project: Project, bug_id: str, voter_key: str,
           user_id: str | None) -> int:
    """One vote per client (a second one changes nothing); the bug's vote count. A bug the
    caller may not vote on is 404, as if it did not exist; a project the caller cannot see
    answers exactly as a missing one (whatever the bug id), so its existence does not leak."""
    if not sees_project(session, project, user_id):
        raise errors.NotFound("Project not found")
    bug = find_bug(session, project, bug_id)
    if not may_vote(session, project, bug, user_id):
        raise errors.NotFound("Bug not found")
    votes = cast_vote(session=session, bug=bug, voter_key=voter_key)
    session.commit()
    return votes


def project_or_404(session: Session, slug: str) -> Project:
    """A project for a route open to anyone; 404 when there is none."""
    project = project_by_slug(session, slug)
    if project is None:
        raise errors.NotFound("Project not found")
    return project

