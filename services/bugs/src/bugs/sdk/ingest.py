"""The fast path of SDK submits: the reports of concurrent requests written in one transaction.

Reports without a screenshot are the bulk of SDK traffic: plain reports (each a new bug) and
crashes (grouped by fingerprint into one bug). Each request validates its report, hands it to
its process's ingestor and waits; a writer thread takes every report waiting at that moment
(group commit: under load a batch fills while the previous one is being written, with no
added delay when idle) and stores them in two round trips:

  1. `draw_numbers`, a short transaction of its own: the batch's API keys are checked (a key
     rotated or a project deleted before it is refused, 401) and each project's numbers for
     its plain reports drawn with one `UPDATE projects SET bug_seq = bug_seq + k`;
  2. the batch's transaction: the crashes' fingerprint locks (the advisory locks the
     one-report path takes, in one order) and their bugs, row-locked; then, in one pipeline,
     one INSERT each into bugs, occurrences, activity and outbox, one UPDATE of the crashes'
     bugs, and COMMIT. The statement-level triggers on bugs and outbox run once per batch.
     (A batch with a crash seen for the first time draws that bug's number in this
     transaction, as the one-report path does.)

Invariants:
- A request is answered 201 only after the transaction holding its report committed: a
  report is never acknowledged and then lost.
- The rows and events are those of the one-report path (`service.submit_report`): a plain
  report is a new bug with its "created" activity entry and `bug_created` event; a crash is a
  new bug (with its first occurrence row) or one more occurrence of its bug, with the same
  counters, activity, regression and events as `service.apply_occurrence` makes, applied in
  the order the reports reached the writer.
- A batch that fails is retried report by report, each in its own transaction, so a report
  that cannot be stored fails alone and its error reaches its own request.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.rows import dict_row
from sqlalchemy.dialects import postgresql

from bugnet_common import errors
from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event, isoformat, utcnow
from bugnet_common.db import Database
from bugnet_common.groupcommit import BatchWriter, WriterPool
from bugnet_common.logs import current_request_id

from ..models import BUS, Activity, Bug, Occurrence, Project
from ..reports.schemas import BugIn
from ..views import iso
from . import fingerprint as fp
from .schemas import SdkReportIn
from .service import SubmittedReportOut, apply_occurrence, player_key

log = logging.getLogger(__name__)

# More reports than this wait for the next transaction (bounds the statement sizes).
MAX_BATCH = 64
# Writer threads per process (each holds one database connection of the app's pool).
# A request gives up waiting after this long (gunicorn's worker timeout is 30 s).
WAIT_SECONDS = 25.0

_BUGS: sa.Table = Bug.__table__  # type: ignore[attr-defined]
_ACTIVITY: sa.Table = Activity.__table__  # type: ignore[attr-defined]
_OCCURRENCES: sa.Table = Occurrence.__table__  # type: ignore[attr-defined]


def eligible(data: SdkReportIn) -> bool:
    """Whether a report takes the fast path: every report without a screenshot to store."""
    return not data.screenshot


@dataclass
class Pending:
    """One request's report, waiting for its batch to commit."""

    key_hash: str
    data: BugIn
    fingerprint: str | None = None  # a crash to group
    bug_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    received_at: datetime = field(default_factory=utcnow)
    done: threading.Event = field(default_factory=threading.Event)
    result: SubmittedReportOut | None = None
    error: BaseException | None = None
    # The submitting request's id, taken in its own thread: the writer thread that stores the
    # report for many requests at once gives it to the report's event as its correlation id.
    request_id: str | None = field(default_factory=current_request_id)

    @classmethod
    def of(cls, key_hash: str, data: BugIn) -> Pending:
        """A report as the one-report path reads it: grouped when it is a crash."""
        crash = fp.is_crash(title=data.title, category=data.category)
        return cls(key_hash=key_hash, data=data, fingerprint=fp.fingerprint(
            title=data.title, description=data.description, steps=data.steps) if crash else None)

    @property
    def resolved(self) -> bool:
        return self.done.is_set()

    def resolve(self, result: SubmittedReportOut | None = None,
                error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self.done.set()


# ---- rows and answers -----------------------------------------------------------------------

def search_text(data: BugIn) -> str:
    """As `reports.service.search_text` of a new bug: title, description and steps."""
    return "\n".join(part for part in (data.title, data.description, data.steps) if part)


def bug_row(item: Pending, project_id: str, number: int) -> dict[str, Any]:
    """The bugs row `reports.service.new_bug` writes for an SDK report."""
    data, now = item.data, item.received_at
    return {
        "id": item.bug_id, "project_id": project_id, "number": number,
        "title": data.title, "description": data.description, "category": data.category,
        "priority": data.priority, "status": "open", "steps": data.steps,
        "expected": data.expected, "actual": data.actual, "platform": data.platform,
        "game_version": data.game_version, "os_info": data.os_info,
        "device_info": data.device_info, "player_email": data.player_email,
        "reporter_user_id": None, "reporter_name": data.reporter_name,
        "reporter_steam_id": data.reporter_steam_id, "assignee_id": None, "votes": 0,
        "occurrences": 1, "first_seen_version": data.game_version,
        "last_seen_version": data.game_version, "resolved_in_version": None,
        "platforms": [data.platform] if data.platform else [],
        "versions": [data.game_version] if data.game_version else [],
        "source": "sdk", "is_public": False, "is_regression": False, "git_issue_url": None,
        "fingerprint": item.fingerprint, "search_text": search_text(data),
        "created_at": now, "updated_at": now, "resolved_at": None, "last_seen_at": now,
    }


def event(subject: str, data: Any, correlation_id: str | None = None) -> Event:
    """An outbox event as `events.emit` stages it."""
    return Event(type=subject, source="bugs", data=ev.payload(data),
                 correlation_id=correlation_id)


def created_event(row: Mapping[str, Any], project_slug: str,
                  first_player: str | None = None, request_id: str | None = None) -> Event:
    """`bug_created` of a new SDK bug, with the snapshot `events.snapshot` takes (and, for a
    crash, who hit its first report)."""
    snap = ev.BugSnapshot(
        id=row["id"], project_id=row["project_id"], project_slug=project_slug,
        number=row["number"], title=row["title"], category=row["category"],
        priority=row["priority"], status=row["status"], source=row["source"],
        is_public=row["is_public"], platform=row["platform"], game_version=row["game_version"],
        fingerprint=row["fingerprint"], assignee_id=None, reporter_user_id=None,
        created_at=iso(row["created_at"]) or "", resolved_at=None,
        url=f"/api/projects/{project_slug}/bugs/{row['id']}")
    return event(subjects.BUG_CREATED, ev.BugChanged(bug=snap, actor_id=None,
                                                     player_key=first_player), request_id)


def created_activity(row: Mapping[str, Any]) -> dict[str, Any]:
    """The "created" entry `reports.service.new_bug` records."""
    return {"id": str(uuid.uuid4()), "bug_id": row["id"], "actor_id": None, "actor_name": None,
            "action": "created", "field": None, "from": None, "to": None,
            "created_at": row["created_at"]}


def submitted(bug: Mapping[str, Any], *, grouped: bool = False,
              regressed: bool = False) -> SubmittedReportOut:
    """What the submit answers, as `service.submitted_out` renders it (no screenshot)."""
    return SubmittedReportOut(
        id=bug["id"], number=bug["number"], title=bug["title"],
        status=bug["status"], category=bug["category"], priority=bug["priority"],
        source=bug["source"], occurrences=bug["occurrences"], grouped=grouped,
        is_regression=bug["is_regression"], regressed=regressed,
        fingerprint=bug["fingerprint"], created_at=isoformat(bug["created_at"]),
        last_seen_at=iso(bug["last_seen_at"]), screenshot=None,
    )


def _values(bug: Bug) -> dict[str, Any]:
    return {column.key: getattr(bug, column.key) for column in _BUGS.c}


# ---- statements -----------------------------------------------------------------------------

_PREP = postgresql.dialect().identifier_preparer


def _json_insert(table: sa.Table) -> str:
    """`INSERT INTO table SELECT FROM json_populate_recordset(..)`: all the rows as one JSON
    parameter, so one statement (one trigger run) for any number of rows, with the same text
    every time (psycopg prepares it once). Each value goes through its column's input function,
    so an over-long string is refused as on any INSERT. Identity columns are left to their
    default."""
    name = _PREP.quote(table.name)
    columns = ", ".join(_PREP.quote(c.name) for c in table.c if c.identity is None)
    return (f"INSERT INTO {name} ({columns}) SELECT {columns} FROM "
            f"json_populate_recordset(NULL::{name}, %s::json)")


def _json_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps(rows, default=_iso, separators=(",", ":"))


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_INSERT_BUGS = _json_insert(_BUGS)
_INSERT_ACTIVITY = _json_insert(_ACTIVITY)
_INSERT_OCCURRENCES = _json_insert(_OCCURRENCES)
# What `service.apply_occurrence` may change on a grouped crash's bug.
_OCCURRENCE_COLUMNS = ("occurrences", "last_seen_at", "last_seen_version", "first_seen_version",
                       "versions", "platforms", "status", "resolved_at", "is_regression",
                       "resolved_in_version", "updated_at")
_UPDATE_BUGS = (
    f"UPDATE {_BUGS.name} AS b SET "
    + ", ".join(f"{c} = r.{c}" for c in _OCCURRENCE_COLUMNS)
    + f" FROM json_populate_recordset(NULL::{_BUGS.name}, %s::json) AS r WHERE b.id = r.id")
# Event payloads travel as JSON text and are stored as the very bytes `Event.to_json` made.
_INSERT_OUTBOX = (f"INSERT INTO {BUS.outbox.name} (id, subject, payload) "
                  "SELECT e.id, e.subject, convert_to(e.payload, 'UTF8') "
                  "FROM json_to_recordset(%s::json) AS e (id uuid, subject text, payload text)")
_PROJECTS = Project.__tablename__
# The key check and `reports.service.next_number`'s row lock, for k numbers at once.
_DRAW_BY_KEY = (f"UPDATE {_PROJECTS} SET bug_seq = bug_seq + %s WHERE api_key_hash = %s "
                "RETURNING id, slug, bug_seq")
_PROJECT_BY_KEY = f"SELECT id, slug, bug_seq FROM {_PROJECTS} WHERE api_key_hash = %s"
_DRAW_BY_ID = f"UPDATE {_PROJECTS} SET bug_seq = bug_seq + %s WHERE id = %s RETURNING bug_seq"
# The lock `service._lock_fingerprint` takes, and the bug it finds.
_LOCK_FINGERPRINT = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
_GROUPED_BUGS = (f"SELECT * FROM {_BUGS.name} WHERE (project_id, fingerprint) IN "
                 "(SELECT * FROM unnest(%s::text[], %s::text[])) ORDER BY number FOR UPDATE")


# ---- one batch ------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyProject:
    """A checked key's project and the first of the numbers drawn for its plain reports."""

    id: str
    slug: str
    first_number: int


def draw_numbers(pg: psycopg.Connection[Any], wanted: Mapping[str, int]) -> dict[str, KeyProject]:
    """Check the keys and draw `wanted[key_hash]` bug numbers for each key's project, in a
    transaction of its own: the project rows stay locked only while it runs (one round trip),
    not while the reports are written. Unknown keys are left out.

    Its commit need not wait for the disk: a report that uses a number commits later, and
    flushing that commit flushes this one too, so a number in a stored bug is never handed
    out again. A batch that fails after the draw leaves a gap in the numbers, never a
    duplicate."""
    # Keys map one to one to projects: locking in key order is one order for every batch.
    hashes = sorted(wanted)
    with pg.pipeline():
        pg.execute("SET LOCAL synchronous_commit TO off")
        cursors = [pg.execute(_DRAW_BY_KEY, (wanted[h], h)) if wanted[h]
                   else pg.execute(_PROJECT_BY_KEY, (h,)) for h in hashes]
        pg.commit()
    out = {}
    for key_hash, cursor in zip(hashes, cursors, strict=True):
        row = cursor.fetchone()
        if row is not None:
            project_id, slug, last = row
            out[key_hash] = KeyProject(project_id, slug, int(last) - wanted[key_hash] + 1)
    return out


@dataclass
class _Rows:
    """Everything one batch writes, in order."""

    new_bugs: list[dict[str, Any]] = field(default_factory=list)
    changed_bugs: list[dict[str, Any]] = field(default_factory=list)
    occurrences: list[dict[str, Any]] = field(default_factory=list)
    activity: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def new_bug(self, row: dict[str, Any], slug: str, first_player: str | None = None,
                request_id: str | None = None) -> None:
        self.new_bugs.append(row)
        self.activity.append(created_activity(row))
        self.events.append(created_event(row, slug, first_player, request_id))


def write_batch(pg: psycopg.Connection[Any],
                batch: Sequence[Pending]) -> dict[int, SubmittedReportOut]:
    """Store `batch` (see the module's docstring). Returns the answer of each stored report by
    its index; the others' keys are unknown (or their project was deleted)."""
    plain: dict[str, list[int]] = defaultdict(list)
    crashes: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(batch):
        (crashes if item.fingerprint else plain)[item.key_hash].append(i)
    projects = draw_numbers(pg, {h: len(plain.get(h, ())) for h in {*plain, *crashes}})

    rows = _Rows()
    answers: dict[int, SubmittedReportOut] = {}
    for key_hash, indexes in plain.items():
        project = projects.get(key_hash)
        if project is None:
            continue
        for n, i in enumerate(indexes):
            row = bug_row(batch[i], project.id, project.first_number + n)
            rows.new_bug(row, project.slug, request_id=batch[i].request_id)
            answers[i] = submitted(row)
    grouped = {h: indexes for h, indexes in crashes.items() if h in projects}
    if grouped:
        _group_crashes(pg, batch, grouped, projects, rows, answers)
    if not answers:
        pg.rollback()
        return {}

    outbox = [{"id": e.id, "subject": e.type, "payload": e.to_json().decode()}
              for e in rows.events]
    with pg.pipeline():
        if rows.new_bugs:
            pg.execute(_INSERT_BUGS, (_json_rows(rows.new_bugs),))
        if rows.changed_bugs:
            pg.execute(_UPDATE_BUGS, (_json_rows(rows.changed_bugs),))
        if rows.occurrences:
            pg.execute(_INSERT_OCCURRENCES, (_json_rows(rows.occurrences),))
        pg.execute(_INSERT_ACTIVITY, (_json_rows(rows.activity),))
        pg.execute(_INSERT_OUTBOX, (_json_rows(outbox),))
        pg.commit()
    return answers


def _group_crashes(pg: psycopg.Connection[Any], batch: Sequence[Pending],
                   crashes: Mapping[str, list[int]], projects: Mapping[str, KeyProject],
                   rows: _Rows, answers: dict[int, SubmittedReportOut]) -> None:
    """Each crash becomes an occurrence of its bug, or the first report of a new one (then the
    next reports of it in the batch are its occurrences), as `service.submit_report` does."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for key_hash, indexes in crashes.items():
        for i in indexes:
            groups[(projects[key_hash].id, batch[i].fingerprint or "")].append(i)
    keys = sorted(groups)
    with pg.pipeline():
        for project_id, fingerprint in keys:  # one lock order for every batch
            pg.execute(_LOCK_FINGERPRINT, (f"bugs.fingerprint:{project_id}:{fingerprint}",))
        found = pg.cursor(row_factory=dict_row).execute(
            _GROUPED_BUGS, ([k[0] for k in keys], [k[1] for k in keys]))
    existing: dict[tuple[str, str], Bug] = {}
    for found_row in found.fetchall():  # the oldest bug of a fingerprint, as the lookup orders
        existing.setdefault((found_row["project_id"], found_row["fingerprint"]), Bug(**found_row))

    fresh = [k for k in keys if k not in existing]
    numbers: dict[str, int] = {}
    if fresh:
        wanted: dict[str, int] = defaultdict(int)
        for project_id, _ in fresh:
            wanted[project_id] += 1
        with pg.pipeline():
            drawn = {p: pg.execute(_DRAW_BY_ID, (wanted[p], p)) for p in sorted(wanted)}
        for project_id, cursor in drawn.items():
            last = cursor.fetchone()
            if last is None:
                raise errors.Unauthorized("Invalid API key")  # deleted meanwhile: retried alone
            numbers[project_id] = int(last[0]) - wanted[project_id] + 1

    slugs = {p.id: p.slug for p in projects.values()}
    for key in keys:
        project_id, _ = key
        # `events.snapshot` reads the project's id and slug only.
        project = Project(id=project_id, slug=slugs[project_id], name="", api_key_hash="",
                          api_key_last4="")
        indexes = groups[key]
        bug = existing.get(key)
        new_row: dict[str, Any] | None = None
        if bug is None:
            first = batch[indexes[0]]
            new_row = bug_row(first, project_id, numbers[project_id])
            numbers[project_id] += 1
            rows.new_bug(new_row, project.slug, player_key(first.data), first.request_id)
            rows.occurrences.append({
                "bug_id": new_row["id"], "game_version": first.data.game_version,
                "platform": first.data.platform, "player_key": player_key(first.data),
                "created_at": new_row["created_at"]})
            answers[indexes[0]] = submitted(new_row)
            bug, indexes = Bug(**new_row), indexes[1:]
        for i in indexes:
            item = batch[i]
            occurred = apply_occurrence(bug, project=project, data=item.data,
                                        key=player_key(item.data), now=item.received_at)
            rows.occurrences.append({
                "bug_id": bug.id, "game_version": occurred.occurrence.game_version,
                "platform": occurred.occurrence.platform,
                "player_key": occurred.occurrence.player_key,
                "created_at": occurred.occurrence.created_at})
            rows.activity += [{"id": a.id, "bug_id": a.bug_id, "actor_id": a.actor_id,
                               "actor_name": a.actor_name, "action": a.action, "field": a.field,
                               "from": a.from_value, "to": a.to_value, "created_at": a.created_at}
                              for a in occurred.activity]
            rows.events += [event(subject, data) for subject, data in occurred.events]
            answers[i] = submitted(_values(bug), grouped=True, regressed=occurred.regressed)
        if new_row is not None:  # inserted once, with the counters of all its reports
            new_row.update(_values(bug))
        elif indexes:
            rows.changed_bugs.append(_values(bug))


# ---- the writers ----------------------------------------------------------------------------

class Ingestor:
    """One per app and process: a queue of pending reports and the threads that write them.

    Each writer thread takes every report waiting when it is free, so with several writers one
    batch is being filled while others are on their way to the database."""

    def __init__(self, *, writers: int = 1, max_batch: int = MAX_BATCH) -> None:
        self.pool: WriterPool[Pending] = WriterPool(
            lambda db, pending: _Writer(db, pending, max_batch),
            writers=writers, name="bugs-sdk-ingest")

    def submit(self, db: Database, key_hash: str, data: BugIn,
               timeout: float = WAIT_SECONDS) -> SubmittedReportOut:
        """Store one report; returns the submit's answer once its transaction committed."""
        item = Pending.of(key_hash, data)
        self.pool.put(db, item)
        if not item.done.wait(timeout):
            # It may still be written; the client will see an error and may retry.
            raise errors.ServiceUnavailable("The report could not be stored in time; retry shortly")
        if item.error is not None:
            raise item.error
        assert item.result is not None
        return item.result


class _Writer(BatchWriter[Pending]):
    """One writer thread: a batch in one transaction, else its reports one by one."""

    name = "sdk ingest"

    def write(self, batch: list[Pending]) -> None:
        try:
            results = write_batch(self.connection(), batch)
        except Exception as exc:
            self.discard_connection()
            if len(batch) == 1:
                batch[0].resolve(error=exc)
                return
            log.warning("sdk ingest batch of %d failed (%s); retrying one by one",
                        len(batch), type(exc).__name__)
            for item in batch:
                self.write([item])
            return
        for i, item in enumerate(batch):
            result = results.get(i)
            if result is None:
                item.resolve(error=errors.Unauthorized("Invalid API key"))
            else:
                item.resolve(result)

