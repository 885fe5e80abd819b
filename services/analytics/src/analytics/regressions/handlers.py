"""The `analytics-regressions` consumer: a `bug_regressed` event of the bugs service becomes a
`recurrence` regression.

The event says which bug came back, not in which version: that is the report just before it
(`bug_occurred`), which the read-model consumer (`analytics-readmodels`) stores in
`bug_occurrences`. The two consumers run independently, so this one waits for the read model
to have reached the event (the bug's row carries the time of the newest event applied): until
then the handler fails and the message is redelivered with a delay. A deleted bug or project
is skipped. Handlers run in the inbox transaction and never commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cmp_to_key
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event
from bugnet_common.bus.inbox import Consumer, PoisonMessage
from bugnet_common.versions import compare_versions

from ..handlers import event_time
from ..models import Bug, Tombstone
from .service import Found, record

DURABLE = "analytics-regressions"
SUBJECTS: tuple[str, ...] = (subjects.BUG_REGRESSED,)
# Reports stamped this long after the regression still count as the one that brought it back
# (the two events are stamped one after the other by the bugs service).
CLOCK_SLACK = timedelta(seconds=1)


class ReadModelBehind(Exception):
    """The read model has not applied this event yet: retry later."""


def _versions(session: Session, bug_id: str, at: datetime) -> list[str]:
    rows = session.execute(sa.text("""
        SELECT DISTINCT game_version FROM bug_occurrences
        WHERE bug_id = :bug AND occurred_at <= :at AND game_version IS NOT NULL"""),
        {"bug": bug_id, "at": at + CLOCK_SLACK}).scalars().all()
    return sorted(rows, key=cmp_to_key(compare_versions))


def bug_regressed(*, session: Session, event: Event) -> None:
    """Record the recurrence of a fixed crash (once per bug and version)."""
    bug = event.data.get("bug")
    if not isinstance(bug, dict) or not bug.get("id") or not bug.get("project_id"):
        raise PoisonMessage(f"{event.type} without 'bug'")
    bug_id, project_id = str(bug["id"]), str(bug["project_id"])
    for kind, id_ in (("bug", bug_id), ("project", project_id)):
        if session.get(Tombstone, (kind, id_)) is not None:
            return
    at = event_time(event)
    row = session.get(Bug, bug_id)
    if row is None or row.updated_at < at:
        raise ReadModelBehind(f"read model has not reached bug {bug_id} at {event.time}")
    versions = _versions(session, bug_id, at)
    version = versions[-1] if versions else (bug.get("game_version") or None)
    previous = versions[-2] if len(versions) > 1 else None
    changes = event.data.get("changes") or {}
    status_change = changes.get("status") if isinstance(changes, dict) else None
    details: dict[str, Any] = {
        "title": row.title, "fingerprint": row.fingerprint, "occurrences": row.occurrences,
        "status_before": status_change.get("from") if isinstance(status_change, dict) else None,
        "regressed_at": event.time,
    }
    record(session, project_id=project_id, project_slug=str(bug.get("project_slug") or ""),
           found=Found(kind="recurrence", version=version, previous_version=previous,
                       bug_id=bug_id, details=details,
                       key=f"recurrence:{bug_id}:{version or event.id}"),
           now=at)


def regressions_consumer(durable: str = DURABLE) -> Consumer:
    return Consumer(durable=durable, stream="BUGS", subjects=list(SUBJECTS),
                    handler=bug_regressed)
