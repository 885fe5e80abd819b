"""Use cases on bugs. Each is one transaction with its outbox events."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects
from bugnet_common.bus.events import utcnow

from ..events import emit, snapshot
from ..models import Activity, Bug, Project
from .schemas import BugIn


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
            reporter_user_id: str | None, fingerprint: str | None = None) -> Bug:
    """Stage a new bug with its number, activity entry and `bug_created` event (no commit)."""
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
    record(session, bug_id=bug.id, actor_id=reporter_user_id, action="created", at=now)
    session.flush()
    emit(session, subjects.BUG_CREATED, ev.BugChanged(bug=snapshot(bug, project),
                                                      actor_id=reporter_user_id))
    return bug


def create_bug(*, session: Session, project: Project, data: BugIn, source: str,
               reporter_user_id: str | None) -> Bug:
    """File a bug in `project`."""
    bug = new_bug(session, project=project, data=data, source=source,
                  reporter_user_id=reporter_user_id)
    session.commit()
    return bug
