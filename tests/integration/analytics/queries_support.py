"""A known dataset for the analytics query tests (HA2): 1,003 sessions over three days across
three releases and two platforms with a fixed crash pattern, written through the real
ingestion code (`support.insert_sessions`), plus perf snapshots and ratings inserted as rows.

The session pattern (per release and platform: sessions, of them crashed):

| release | Windows (sent as win32 / Windows) | Linux (sent as X11 / linux) |
|---|---|---|
| 1.2.0  | 100, 3  | 100, 1 |
| 1.9.0  | 200, 6  | 200, 2 |
| 1.10.0 | 200, 15 | 200, 5 |

plus 3 sessions with neither version nor platform (not crashed), and 10 crashed sessions of
release 1.0.0 forty days ago (outside every default window). Session i of a group starts on
day `today - 1 - (i % 3)` at 12:00 + i seconds; the first `crashed` sessions of a group crash;
every session has a Steam id `group-player (i % 50)`: 50 players per group.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from integration.analytics.support import ProjectRef, insert_sessions

from bugnet_common.db import Database

GROUPS: tuple[tuple[str, str, int, int], ...] = (
    # (version, platform as sent, sessions, crashed)
    ("1.2.0", "win32", 100, 3), ("1.2.0", "X11", 100, 1),
    ("1.9.0", "Windows", 200, 6), ("1.9.0", "linux", 200, 2),
    ("1.10.0", "win32", 200, 15), ("1.10.0", "X11", 200, 5),
)


def today() -> date:
    return datetime.now(UTC).date()


def noon(day: date, seconds: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC) + timedelta(seconds=seconds)


@dataclass
class Dataset:
    """What was sent, for the tests to count expectations from."""

    sessions: list[dict[str, Any]] = field(default_factory=list)  # day, version, platform, crashed, player


def load_sessions(db: Database, project: ProjectRef) -> Dataset:
    data = Dataset()
    requests: list[tuple[str, str, dict[str, Any], datetime]] = []
    for g, (version, platform, count, crashed) in enumerate(GROUPS):
        for i in range(count):
            day = today() - timedelta(days=1 + i % 3)
            at = noon(day, i)
            token = f"s-{g}-{i}-{uuid.uuid4().hex[:6]}"
            player = f"{g}-{i % 50}"
            requests.append(("start", token, {"platform": platform, "game_version": version,
                                              "device_info": "GPU", "os_info": "OS",
                                              "steam_id": player}, at))
            if i < crashed:
                requests.append(("end", token, {"crashed": True}, at + timedelta(minutes=5)))
            elif i % 4 == 0:
                requests.append(("end", token, {"crashed": False}, at + timedelta(minutes=5)))
            data.sessions.append({"day": day, "version": version, "crashed": i < crashed,
                                  "platform": "Windows" if platform.lower().startswith("win")
                                  else "Linux", "player": player})
    for i in range(3):
        day = today() - timedelta(days=1 + i)
        requests.append(("start", f"anon-{i}-{uuid.uuid4().hex[:6]}", {"device_info": "x"},
                         noon(day, 5000 + i)))
        data.sessions.append({"day": day, "version": "", "crashed": False, "platform": "",
                              "player": None})
    old = today() - timedelta(days=40)
    for i in range(10):
        token = f"old-{i}-{uuid.uuid4().hex[:6]}"
        requests.append(("start", token, {"platform": "win32", "game_version": "1.0.0",
                                          "steam_id": f"old-{i}"}, noon(old, i)))
        requests.append(("end", token, {"crashed": True}, noon(old, i + 60)))
    requests.sort(key=lambda r: r[3])  # in time order, as a live game would send them
    answers = insert_sessions(db, project.api_key, requests)
    failed = [a for a in answers if isinstance(a, Exception)]
    assert not failed, failed[:3]
    return data


def perf_rows(bug_id: str | None = None) -> list[dict[str, Any]]:
    """1.9.0/Windows: frame times 1..60 ms; 1.10.0/Windows: 11..70 ms (two with a bug);
    1.2.0/Linux: 40 at 5.5 ms; one without version or platform; one 40 days old."""
    rows: list[dict[str, Any]] = []
    for i in range(1, 61):
        row = {"game_version": "1.9.0", "platform": "Windows", "frame_time_ms": float(i),
               "fps": float(200 - i), "memory_used_mb": float(10 * i)}
        if i <= 3:
            row.update(scene="forest", scene_load_ms=[100.0, 200.0, 400.0][i - 1])
        if i == 4:
            row.update(scene="castle", scene_load_ms=50.0)
        rows.append(row)
    for i in range(11, 71):
        rows.append({"game_version": "1.10.0", "platform": "Windows",
                     "frame_time_ms": float(i), "fps": 60.0, "memory_used_mb": 512.0,
                     "bug_id": bug_id if i in (69, 70) else None,
                     "created_at": noon(today() - timedelta(days=1), i)})
    rows += [{"game_version": "1.2.0", "platform": "Linux", "frame_time_ms": 5.5, "fps": 180.0,
              "memory_used_mb": 256.0} for _ in range(40)]
    rows.append({"frame_time_ms": 20.0, "fps": 50.0, "memory_used_mb": 100.0})
    rows.append({"game_version": "0.9", "platform": "Windows", "frame_time_ms": 99.0,
                 "fps": 10.0, "memory_used_mb": 1.0,
                 "created_at": noon(today() - timedelta(days=40))})
    return rows


def insert_snapshots(db: Database, project: ProjectRef, rows: list[dict[str, Any]]) -> None:
    """Perf snapshots as rows (fields of perf_snapshots; created_at defaults to yesterday)."""
    with db.engine.begin() as conn:
        for row in rows:
            at = row.get("created_at") or noon(today() - timedelta(days=1))
            conn.execute(sa.text("""
                INSERT INTO perf_snapshots (id, project_id, created_at, day, game_version, platform,
                    fps, frame_time_ms, memory_used_mb, scene, scene_load_ms, custom_metrics,
                    bug_id)
                VALUES (:id, :project, :at, :day, :version, :platform, :fps, :frame, :memory,
                        :scene, :load, CAST(:metrics AS jsonb), :bug)"""),
                {"id": str(uuid.uuid4()), "project": project.id, "at": at, "day": at.date(),
                 "version": row.get("game_version", ""), "platform": row.get("platform", ""),
                 "fps": row["fps"], "frame": row["frame_time_ms"],
                 "memory": row["memory_used_mb"], "scene": row.get("scene"),
                 "load": row.get("scene_load_ms"), "metrics": row.get("custom_metrics", "{}"),
                 "bug": row.get("bug_id")})


def insert_rating(db: Database, project: ProjectRef, *, bug_id: str, rating: int,
                  at: datetime, comment: str | None = None, rater: str | None = None) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.text("""
            INSERT INTO satisfaction_ratings (id, project_id, bug_id, rater_key, rating, comment,
                created_at)
            VALUES (:id, :project, :bug, :rater, :rating, :comment, :at)"""),
            {"id": str(uuid.uuid4()), "project": project.id, "bug": bug_id,
             "rater": rater or f"ip:{uuid.uuid4()}", "rating": rating,
             "comment": comment, "at": at})
