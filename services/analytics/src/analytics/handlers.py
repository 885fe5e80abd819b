"""The read models of the bugs service: projects and their API keys, members, bugs and crash
occurrences, kept from the BUGS stream by the `analytics-readmodels` consumer.

Each handler is `(*, session, event)`, runs inside the inbox transaction (it never commits)
and is idempotent: a redelivered or replayed event leaves the same state. Redeliveries can
reorder events, so:
- an upsert older than the row it would change is skipped (rows carry the time of the newest
  event applied, `updated_at`);
- a deleted project or bug leaves a tombstone and is never brought back by a late event;
- an API key hash, once superseded, never works again; a key is superseded by a rotation at
  least as new as the key itself, so replaying rotations in any order ends with the newest
  key the only one that works.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Session

from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event, utcnow
from bugnet_common.bus.inbox import PoisonMessage

from .models import ApiKey, Bug, BugOccurrence, Member, Project, Tombstone
from .platforms import normalize_platform

log = logging.getLogger(__name__)

PROJECTS: sa.Table = Project.__table__  # type: ignore[attr-defined]
API_KEYS: sa.Table = ApiKey.__table__  # type: ignore[attr-defined]
MEMBERS: sa.Table = Member.__table__  # type: ignore[attr-defined]
BUGS: sa.Table = Bug.__table__  # type: ignore[attr-defined]
OCCURRENCES: sa.Table = BugOccurrence.__table__  # type: ignore[attr-defined]
TOMBSTONES: sa.Table = Tombstone.__table__  # type: ignore[attr-defined]

# Every subject the read models follow (the consumer's filter).
SUBJECTS: tuple[str, ...] = (
    subjects.PROJECT_CREATED, subjects.PROJECT_UPDATED, subjects.PROJECT_DELETED,
    subjects.API_KEY_ROTATED,
    subjects.MEMBER_ADDED, subjects.MEMBER_UPDATED, subjects.MEMBER_REMOVED,
    subjects.BUG_CREATED, subjects.BUG_UPDATED, subjects.BUG_RESOLVED, subjects.BUG_REGRESSED,
    subjects.BUG_OCCURRED, subjects.BUG_DELETED,
)


# ---- helpers --------------------------------------------------------------------------------

def _str(data: dict[str, Any], name: str, event: Event) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise PoisonMessage(f"{event.type} without '{name}'")
    return value


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def event_time(event: Event) -> datetime:
    return _time(event.time) or utcnow()


def _tombstoned(session: Session, kind: str, id_: str) -> bool:
    return session.execute(sa.select(sa.literal(1)).where(
        TOMBSTONES.c.kind == kind, TOMBSTONES.c.id == id_)).first() is not None


def _bury(session: Session, kind: str, id_: str, at: datetime) -> None:
    session.execute(pg_insert(TOMBSTONES).values(kind=kind, id=id_, deleted_at=at)
                    .on_conflict_do_nothing())


def _project_tables(session: Session) -> list[str]:
    """Every table of this database with a `project_id` column (read models, sessions,
    rollups, and the tables other areas add): what a deleted project leaves behind."""
    rows = session.execute(sa.text(
        "SELECT table_name FROM information_schema.columns WHERE column_name = 'project_id' "
        "AND table_schema = current_schema() ORDER BY table_name")).all()
    return [r[0] for r in rows]


# ---- projects, keys, members ----------------------------------------------------------------

def add_key(session: Session, *, project_id: str, key_hash: str, at: datetime) -> None:
    """Know `key_hash` as one of the project's keys since `at`; it is born superseded when a
    newer key of the project is known already (its rotation was applied first)."""
    newer = sa.select(sa.literal(1)).where(
        API_KEYS.c.project_id == project_id, API_KEYS.c.created_at > at).exists()
    session.execute(pg_insert(API_KEYS).values(
        key_hash=key_hash, project_id=project_id, created_at=at,
        superseded_at=sa.case((newer, at), else_=None),
    ).on_conflict_do_nothing(index_elements=[API_KEYS.c.key_hash]))


def project_changed(*, session: Session, event: Event) -> None:
    """project_created / project_updated: the project as it now is, and its key."""
    data = event.data
    project_id = _str(data, "project_id", event)
    slug = _str(data, "slug", event)
    if _tombstoned(session, "project", project_id):
        return
    at = event_time(event)
    # Slugs are unique among live projects: a row with this slug and another id belongs to a
    # project whose deletion has not reached us yet.
    session.execute(sa.delete(PROJECTS).where(PROJECTS.c.slug == slug,
                                              PROJECTS.c.id != project_id))
    values = {"slug": slug, "name": data.get("name") or "", "owner_id": data.get("owner_id"),
              "settings": data.get("settings") or {}, "updated_at": at}
    session.execute(pg_insert(PROJECTS).values(id=project_id, **values).on_conflict_do_update(
        index_elements=[PROJECTS.c.id], set_=values, where=PROJECTS.c.updated_at <= at))
    key_hash = data.get("api_key_hash")
    if isinstance(key_hash, str) and key_hash:
        add_key(session, project_id=project_id, key_hash=key_hash, at=at)


def api_key_rotated(*, session: Session, event: Event) -> None:
    """The project's new key works; every key it had before the rotation stops."""
    data = event.data
    project_id = _str(data, "project_id", event)
    new_hash = _str(data, "api_key_hash", event)
    if _tombstoned(session, "project", project_id):
        return
    at = event_time(event)
    add_key(session, project_id=project_id, key_hash=new_hash, at=at)
    previous = data.get("previous_hash")
    if isinstance(previous, str) and previous and previous != new_hash:
        session.execute(pg_insert(API_KEYS).values(
            key_hash=previous, project_id=project_id, created_at=at, superseded_at=at,
        ).on_conflict_do_nothing(index_elements=[API_KEYS.c.key_hash]))
    session.execute(sa.update(API_KEYS).where(
        API_KEYS.c.project_id == project_id, API_KEYS.c.key_hash != new_hash,
        API_KEYS.c.superseded_at.is_(None), API_KEYS.c.created_at <= at,
    ).values(superseded_at=at))


def project_deleted(*, session: Session, event: Event) -> None:
    """Forget the project and everything analytics holds about it."""
    project_id = _str(event.data, "project_id", event)
    _bury(session, "project", project_id, event_time(event))
    for table in _project_tables(session):
        session.execute(sa.text(f'DELETE FROM "{table}" WHERE project_id = :p'),
                        {"p": project_id})
    session.execute(sa.delete(PROJECTS).where(PROJECTS.c.id == project_id))


def member_changed(*, session: Session, event: Event) -> None:
    """member_added / member_updated / member_removed: the member's role and effective
    permissions (a removed member keeps a row with no role, so a late event cannot revive
    them)."""
    data = event.data
    project_id = _str(data, "project_id", event)
    user_id = _str(data, "user_id", event)
    if _tombstoned(session, "project", project_id):
        return
    at = event_time(event)
    removed = event.type == subjects.MEMBER_REMOVED or not data.get("role")
    perms = data.get("permissions")
    values = {"role": None if removed else data["role"],
              "permissions": [] if removed or not isinstance(perms, list) else
              sorted({p for p in perms if isinstance(p, str)}),
              "updated_at": at}
    session.execute(pg_insert(MEMBERS).values(project_id=project_id, user_id=user_id, **values)
                    .on_conflict_do_update(index_elements=[MEMBERS.c.project_id,
                                                           MEMBERS.c.user_id],
                                           set_=values, where=MEMBERS.c.updated_at <= at))


# ---- bugs -----------------------------------------------------------------------------------

def _snapshot(event: Event) -> dict[str, Any]:
    bug = event.data.get("bug")
    if not isinstance(bug, dict):
        raise PoisonMessage(f"{event.type} without 'bug'")
    for name in ("id", "project_id"):
        _str(bug, name, event)
    return bug


def _upsert_bug(session: Session, bug: dict[str, Any], at: datetime,
                extra: dict[str, Any] | None = None) -> bool:
    """Take the snapshot into the read model unless a newer event was applied or the bug (or
    its project) is gone. True when the bug is live."""
    if _tombstoned(session, "bug", bug["id"]) or _tombstoned(session, "project",
                                                              bug["project_id"]):
        return False
    created = _time(bug.get("created_at")) or at
    values: dict[str, Any] = {
        "project_id": bug["project_id"], "number": int(bug.get("number") or 0),
        "title": str(bug.get("title") or ""), "status": str(bug.get("status") or "open"),
        "priority": str(bug.get("priority") or "medium"),
        "category": str(bug.get("category") or "other"),
        "source": str(bug.get("source") or "dashboard"),
        "platform": normalize_platform(bug.get("platform")) or None,
        "game_version": bug.get("game_version") or None,
        "fingerprint": bug.get("fingerprint") or None,
        "is_public": bool(bug.get("is_public")),
        "created_at": created, "resolved_at": _time(bug.get("resolved_at")),
        "updated_at": at,
    }
    update = dict(values)
    insert = {"id": bug["id"], "occurrences": 1, "last_seen_at": created, **values}
    if extra:
        insert.update(extra)
    stmt = pg_insert(BUGS).values(**insert)
    session.execute(stmt.on_conflict_do_update(index_elements=[BUGS.c.id], set_=update,
                                               where=BUGS.c.updated_at <= at))
    if extra:
        # An occurrence counts even when a newer snapshot was applied before it.
        session.execute(sa.update(BUGS).where(BUGS.c.id == bug["id"]).values(
            occurrences=sa.func.greatest(BUGS.c.occurrences, extra["occurrences"]),
            last_seen_at=sa.func.greatest(BUGS.c.last_seen_at, extra["last_seen_at"])))
    return True


def _add_occurrence(session: Session, event: Event, bug: dict[str, Any], at: datetime,
                    *, game_version: Any, platform: Any, player_key: Any) -> None:
    session.execute(pg_insert(OCCURRENCES).values(
        event_id=event.id, project_id=bug["project_id"], bug_id=bug["id"], occurred_at=at,
        game_version=game_version or None, platform=normalize_platform(platform) or None,
        player_key=str(player_key)[:200] if player_key else None,
    ).on_conflict_do_nothing())


def bug_changed(*, session: Session, event: Event) -> None:
    """bug_created / bug_updated / bug_resolved / bug_regressed: the bug as it now is. A
    grouped crash's first report is its first occurrence."""
    bug = _snapshot(event)
    at = event_time(event)
    live = _upsert_bug(session, bug, at)
    if live and event.type == subjects.BUG_CREATED and bug.get("fingerprint"):
        _add_occurrence(session, event, bug, _time(bug.get("created_at")) or at,
                        game_version=bug.get("game_version"), platform=bug.get("platform"),
                        player_key=event.data.get("player_key"))


def bug_occurred(*, session: Session, event: Event) -> None:
    """One more report of a grouped crash: the bug's new count and an occurrence row."""
    bug = _snapshot(event)
    at = event_time(event)
    count = event.data.get("occurrences")
    extra = {"occurrences": int(count) if isinstance(count, int) else 1, "last_seen_at": at}
    if _upsert_bug(session, bug, at, extra):
        _add_occurrence(session, event, bug, at, game_version=event.data.get("game_version"),
                        platform=event.data.get("platform"),
                        player_key=event.data.get("player_key"))


def bug_deleted(*, session: Session, event: Event) -> None:
    """Forget the bug, its occurrences and its ratings."""
    bug = _snapshot(event)
    _bury(session, "bug", bug["id"], event_time(event))
    session.execute(sa.delete(OCCURRENCES).where(OCCURRENCES.c.bug_id == bug["id"]))
    session.execute(sa.text("DELETE FROM satisfaction_ratings WHERE bug_id = :b"),
                    {"b": bug["id"]})
    session.execute(sa.delete(BUGS).where(BUGS.c.id == bug["id"]))


HANDLERS: dict[str, Callable[..., None]] = {
    subjects.PROJECT_CREATED: project_changed,
    subjects.PROJECT_UPDATED: project_changed,
    subjects.PROJECT_DELETED: project_deleted,
    subjects.API_KEY_ROTATED: api_key_rotated,
    subjects.MEMBER_ADDED: member_changed,
    subjects.MEMBER_UPDATED: member_changed,
    subjects.MEMBER_REMOVED: member_changed,
    subjects.BUG_CREATED: bug_changed,
    subjects.BUG_UPDATED: bug_changed,
    subjects.BUG_RESOLVED: bug_changed,
    subjects.BUG_REGRESSED: bug_changed,
    subjects.BUG_OCCURRED: bug_occurred,
    subjects.BUG_DELETED: bug_deleted,
}


def dispatch(*, session: Session, event: Event) -> None:
    """Route an event of the `analytics-readmodels` consumer to its handler."""
    handler = HANDLERS.get(event.type)
    if handler is None:
        raise PoisonMessage(f"no handler for {event.type}")
    handler(session=session, event=event)
