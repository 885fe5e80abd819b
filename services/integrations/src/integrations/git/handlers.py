"""The bugs read model of the git area, from bugs' bug events (inbox transaction, idempotent).

An upsert older than the row it would change is skipped (redeliveries may arrive out of
order), a deleted bug leaves a tombstone so a late event cannot bring it back, and a bug whose
project this service has not heard of yet is retried (the project's event is on another
consumer).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Session

from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event
from bugnet_common.bus.inbox import PoisonMessage

from ..handlers import event_time
from ..models import ProjectRef, Tombstone
from .models import GitBugRef

BUGS = GitBugRef.__table__  # type: ignore[attr-defined]
TOMBSTONES = Tombstone.__table__  # type: ignore[attr-defined]


def _snapshot(event: Event) -> dict[str, Any]:
    bug = event.data.get("bug")
    if (not isinstance(bug, dict) or not isinstance(bug.get("id"), str)
            or not isinstance(bug.get("project_id"), str)):
        raise PoisonMessage(f"{event.type} without a bug")
    return bug


def _text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def bug_changed(*, session: Session, event: Event) -> None:
    """bug_created / updated / resolved / regressed: the bug as it now is."""
    bug = _snapshot(event)
    if (session.get(Tombstone, ("bug", bug["id"])) is not None
            or session.get(Tombstone, ("project", bug["project_id"])) is not None):
        return
    if session.get(ProjectRef, bug["project_id"]) is None:
        raise LookupError(f"project {bug['project_id']} not in the read model yet")
    number = bug.get("number")
    if isinstance(number, bool) or not isinstance(number, int):
        raise PoisonMessage(f"{event.type} without a bug number")
    at = event_time(event)
    values = {
        "project_id": bug["project_id"], "number": number, "title": _text(bug.get("title")),
        "category": _text(bug.get("category"), "other"),
        "priority": _text(bug.get("priority"), "medium"),
        "status": _text(bug.get("status"), "open"), "source": _text(bug.get("source")),
        "platform": bug.get("platform") if isinstance(bug.get("platform"), str) else None,
        "game_version": (bug.get("game_version")
                         if isinstance(bug.get("game_version"), str) else None),
        "url": _text(bug.get("url")), "created_at": _time(bug.get("created_at")),
    }
    session.exec(pg_insert(BUGS).values(id=bug["id"], updated_at=at, **values)  # type: ignore[call-overload]
                 .on_conflict_do_update(index_elements=[BUGS.c.id],
                                        set_={**values, "updated_at": at},
                                        where=BUGS.c.updated_at <= at))


def bug_deleted(*, session: Session, event: Event) -> None:
    """Forget the bug (its issue link goes with it; the issue on the provider stays)."""
    bug = _snapshot(event)
    session.exec(pg_insert(TOMBSTONES).values(kind="bug", id=bug["id"],  # type: ignore[call-overload]
                                              deleted_at=event_time(event))
                 .on_conflict_do_nothing())
    session.exec(sa.delete(BUGS).where(BUGS.c.id == bug["id"]))  # type: ignore[call-overload]


HANDLERS = {
    subjects.BUG_CREATED: bug_changed,
    subjects.BUG_UPDATED: bug_changed,
    subjects.BUG_RESOLVED: bug_changed,
    subjects.BUG_REGRESSED: bug_changed,
    subjects.BUG_DELETED: bug_deleted,
}
SUBJECTS = list(HANDLERS)


def dispatch(*, session: Session, event: Event) -> None:
    """Route a bug event to its handler."""
    handler = HANDLERS.get(event.type)
    if handler is None:
        raise PoisonMessage(f"no handler for {event.type}")
    handler(session=session, event=event)
