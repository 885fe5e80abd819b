"""Building analytics' read models in tests the way production does: by applying the bugs
service's event payloads through the real handlers and inbox (`Feeder`).

Import as `from integration.analytics.support import Feeder, ...`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from analytics.batching import Pending
from analytics.handlers import dispatch
from analytics.models import BUS
from analytics.sessions.ingest import write_sessions
from analytics.worker import READMODELS_DURABLE
from bugnet_common import apikeys
from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event, isoformat, payload, utcnow
from bugnet_common.bus.inbox import process
from bugnet_common.db import Database
from bugnet_common.testing import TokenIssuer

# What each role may do (the bugs service's defaults), as member events carry them.
ALL_PERMISSIONS = (
    "bugs.view", "bugs.create", "bugs.edit", "bugs.assign", "bugs.delete",
    "comments.create", "comments.internal", "labels.manage", "team.view", "team.manage",
    "settings.manage", "api_key.manage", "integrations.manage", "analytics.view",
    "changelogs.manage", "project.delete",
)
ROLE_PERMISSIONS: dict[str, list[str]] = {
    "owner": sorted(ALL_PERMISSIONS),
    "admin": sorted(set(ALL_PERMISSIONS) - {"project.delete"}),
    "member": sorted({"bugs.view", "bugs.create", "bugs.edit", "bugs.assign", "comments.create",
                      "comments.internal", "analytics.view", "team.view"}),
}


@dataclass(frozen=True)
class User:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class ProjectRef:
    """A project as the read model knows it, with its API key in full."""

    id: str
    slug: str
    api_key: str
    owner: User
    bug_numbers: int = 0
    bugs: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> snapshot

    @property
    def key_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}


@dataclass
class Feeder:
    """Applies bugs-service events to the analytics database through the real handlers."""

    db: Database
    issuer: TokenIssuer

    def apply(self, subject: str, data: Any, *, event_id: str | None = None,
              time: str | None = None) -> Event:
        """Apply one event (a contract instance or plain dict) as the consumer would."""
        body = data if isinstance(data, dict) else payload(data)
        event = Event(type=subject, source="bugs", data=body, **(
            {"id": event_id} if event_id else {}), **({"time": time} if time else {}))
        process(self.db, BUS, READMODELS_DURABLE, event, dispatch)
        return event

    def user(self, name: str = "player") -> User:
        user_id = str(uuid.uuid4())
        email = f"{name}-{user_id[:6]}@example.com"
        return User(id=user_id, email=email, token=self.issuer.token(user_id, email))

    def project(self, slug: str | None = None, owner: User | None = None) -> ProjectRef:
        """A project (project_created + the owner's member_added), with a fresh API key."""
        owner = owner or self.user("owner")
        key = apikeys.generate_api_key()
        ref = ProjectRef(id=str(uuid.uuid4()), slug=slug or f"game-{uuid.uuid4().hex[:8]}",
                         api_key=key, owner=owner)
        self.apply(subjects.PROJECT_CREATED, ev.ProjectChanged(
            project_id=ref.id, slug=ref.slug, name=ref.slug.title(),
            api_key_hash=apikeys.hash_api_key(key), owner_id=owner.id,
            settings={"public_tracker": False}))
        self.member(ref, owner, "owner")
        return ref

    def member(self, project: ProjectRef, user: User, role: str | None = "member",
               permissions: list[str] | None = None) -> None:
        """member_added/updated (role given) or member_removed (role None)."""
        subject = subjects.MEMBER_REMOVED if role is None else subjects.MEMBER_UPDATED
        perms = [] if role is None else (permissions if permissions is not None
                                         else ROLE_PERMISSIONS[role])
        self.apply(subject, ev.MemberChanged(project_id=project.id, user_id=user.id, role=role,
                                             permissions=perms))

    def rotate_key(self, project: ProjectRef) -> str:
        """api_key_rotated: returns the new key (the old one stops working)."""
        key = apikeys.generate_api_key()
        previous = apikeys.hash_api_key(project.api_key)
        self.apply(subjects.API_KEY_ROTATED, ev.ApiKeyRotated(
            project_id=project.id, api_key_hash=apikeys.hash_api_key(key),
            previous_hash=previous))
        project.api_key = key
        return key

    def bug(self, project: ProjectRef, *, title: str = "A bug", status: str = "open",
            category: str = "other", priority: str = "medium", fingerprint: str | None = None,
            game_version: str | None = None, platform: str | None = None,
            created_at: str | None = None, resolved_at: str | None = None,
            is_public: bool = False, player_key: str | None = None) -> dict[str, Any]:
        """bug_created (and bug_resolved when `status` is resolved/closed): returns the
        snapshot. `player_key`: a crash's first reporter, as the bugs service sends it."""
        project.bug_numbers += 1
        bug_id = str(uuid.uuid4())
        now = isoformat(utcnow())
        fixed = status in ("resolved", "closed")
        snap = ev.BugSnapshot(
            id=bug_id, project_id=project.id, project_slug=project.slug,
            number=project.bug_numbers, title=title, category=category, priority=priority,
            status="open", source="sdk" if fingerprint else "dashboard", is_public=is_public,
            platform=platform, game_version=game_version, fingerprint=fingerprint,
            assignee_id=None, reporter_user_id=None, created_at=created_at or now,
            resolved_at=None, url=f"/api/projects/{project.slug}/bugs/{bug_id}")
        self.apply(subjects.BUG_CREATED, ev.BugChanged(bug=snap, player_key=player_key))
        body = payload(snap)
        if status != "open":
            body = self.set_status(project, body, status, resolved_at=resolved_at or (
                now if fixed else None))
        project.bugs[bug_id] = body
        return body

    def set_status(self, project: ProjectRef, bug: dict[str, Any], status: str, *,
                   resolved_at: str | None = None) -> dict[str, Any]:
        """bug_updated (+ bug_resolved when it becomes resolved or closed)."""
        before = bug["status"]
        fixed = status in ("resolved", "closed", "wont_fix")
        body = {**bug, "status": status,
                "resolved_at": (resolved_at or isoformat(utcnow())) if fixed else None}
        change = {"bug": body, "changes": {"status": {"from": before, "to": status}}}
        self.apply(subjects.BUG_UPDATED, change)
        if fixed and before not in ("resolved", "closed", "wont_fix"):
            self.apply(subjects.BUG_RESOLVED, change)
        project.bugs[bug["id"]] = body
        return body

    def occurred(self, project: ProjectRef, bug: dict[str, Any], occurrences: int, *,
                 game_version: str | None = None, platform: str | None = None,
                 player_key: str | None = None) -> None:
        """bug_occurred: one more report of a grouped crash."""
        self.apply(subjects.BUG_OCCURRED, {"bug": bug, "occurrences": occurrences,
                                           "game_version": game_version,
                                           "platform": platform, "player_key": player_key})

    def delete_bug(self, project: ProjectRef, bug: dict[str, Any]) -> None:
        self.apply(subjects.BUG_DELETED, {"bug": bug, "changes": {}})
        project.bugs.pop(bug["id"], None)

    def delete_project(self, project: ProjectRef) -> None:
        self.apply(subjects.PROJECT_DELETED, ev.ProjectDeleted(project_id=project.id,
                                                               slug=project.slug))


# ---- sessions -------------------------------------------------------------------------------

def insert_sessions(db: Database, api_key: str,
                    requests: list[tuple[str, str, dict[str, Any], datetime]],
                    *, batch_size: int = 500) -> list[Any]:
    """Write session starts/ends at given times through the very code the API uses (the
    ingestion batch and its rollups), e.g. to build an exact dataset spread over many days.
    `requests` are (kind "start"|"end", session_token, fields, received_at); fields as the
    API takes them (platform, game_version, os_info, device_info, steam_id, device_id for a
    start; crashed for an end). Returns each request's answer (or ApiError), in order."""
    key_hash = apikeys.hash_api_key(api_key)
    items = [Pending(kind=kind, key_hash=key_hash, values={"session_token": token, **fields},
                     received_at=at) for kind, token, fields, at in requests]
    answers: list[Any] = []
    raw = db.engine.raw_connection()
    try:
        pg = raw.driver_connection
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            out: dict[int, Any] = {}
            write_sessions(pg, chunk, range(len(chunk)), out)  # type: ignore[arg-type]
            answers += [out.get(i) for i in range(len(chunk))]
    finally:
        raw.close()
    return answers


ROLLUP_CHECKS = {
    "session_daily": """
        SELECT project_id, day, game_version, platform, count(*), count(*) FILTER (WHERE crashed),
               min(started_at), max(started_at)
        FROM game_sessions GROUP BY 1, 2, 3, 4
        EXCEPT SELECT project_id, day, game_version, platform, sessions, crashed,
               first_started_at, last_started_at FROM session_daily""",
    "session_daily (extra rows)": """
        SELECT project_id, day, game_version, platform, sessions, crashed,
               first_started_at, last_started_at FROM session_daily
        EXCEPT SELECT project_id, day, game_version, platform, count(*),
               count(*) FILTER (WHERE crashed), min(started_at), max(started_at)
        FROM game_sessions GROUP BY 1, 2, 3, 4""",
    "session_minutes": """
        SELECT project_id, date_trunc('minute', started_at AT TIME ZONE 'UTC'), count(*),
               count(*) FILTER (WHERE crashed) FROM game_sessions GROUP BY 1, 2
        EXCEPT SELECT project_id, minute AT TIME ZONE 'UTC', sessions, crashed
        FROM session_minutes WHERE sessions <> 0 OR crashed <> 0""",
    "players": """
        SELECT project_id, player_hash, min(day), max(day), max(day) FILTER (WHERE crashed)
        FROM game_sessions WHERE player_hash IS NOT NULL GROUP BY 1, 2
        EXCEPT SELECT project_id, player_hash, first_seen_day, last_seen_day, last_crashed_day
        FROM players""",
    "player_days": """
        WITH p AS (SELECT project_id, player_hash, max(day) AS seen,
                          max(day) FILTER (WHERE crashed) AS crashed
                   FROM game_sessions WHERE player_hash IS NOT NULL GROUP BY 1, 2),
        expected AS (
            SELECT project_id, day, sum(players) AS players, sum(crashed) AS crashed FROM (
                SELECT project_id, seen AS day, 1 AS players, 0 AS crashed FROM p
                UNION ALL SELECT project_id, crashed, 0, 1 FROM p WHERE crashed IS NOT NULL
            ) x GROUP BY 1, 2)
        (SELECT * FROM expected EXCEPT SELECT project_id, day, players, crashed_players
         FROM player_days WHERE players <> 0 OR crashed_players <> 0)
        UNION ALL
        (SELECT project_id, day, players, crashed_players FROM player_days
         WHERE players <> 0 OR crashed_players <> 0 EXCEPT SELECT * FROM expected)""",
}


def rollup_mismatches(db: Database) -> dict[str, list[Any]]:
    """Rows where a rollup differs from the GROUP BY over `game_sessions` (empty: all equal).
    (`players.first_seen_day` is checked too: sessions arrive in time order in tests.)"""
    found: dict[str, list[Any]] = {}
    with db.engine.connect() as conn:
        for name, query in ROLLUP_CHECKS.items():
            rows = list(conn.exec_driver_sql(query).all())
            if rows:
                found[name] = rows
    return found
