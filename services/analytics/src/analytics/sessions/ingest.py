"""Session starts and ends, written in batches (see `batching.py`) with their rollups.

A batch is one SQL statement and its COMMIT: the batch's sessions, one row per token, go
through `INSERT ... ON CONFLICT` joined with the live API keys, and the rows it inserted or
changed (PostgreSQL 18 `RETURNING old/new` tells which) feed, in the same statement, one
upsert per distinct key of each rollup: `session_daily`, `session_minutes`, `players` and
`player_days` (see models.py). So each hot rollup row is written once per batch, not once
per request, and a batch's rollups commit with its sessions or not at all.

Rules (spec §6):
- a start records a session (day = the UTC day it started); a second start of a token does
  nothing;
- an end sets `ended_at` once and `crashed` for good (a later `crashed: false` never clears
  it); it counts the crash on the session's start day;
- an end for an unknown token records a session started (and ended) at that moment; a start
  arriving later for the token adds nothing;
- a token belongs to the project that used it first: another project's start or end for it
  is refused (409) and changes nothing;
- a key that is unknown or replaced (`api_keys.superseded_at`) stores nothing (401).

Requests for the same token in one batch are applied in arrival order, folded into one row.
A token sent with two different keys in one batch is written in a second pass.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import psycopg

from bugnet_common import errors

from ..batching import Pending
from ..platforms import normalize_platform
from .schemas import SessionEndedOut, SessionStartedOut

WRITE_SESSIONS = """
WITH input AS (
    SELECT i.*, k.project_id
    FROM json_to_recordset(%s::json) AS i(
        session_token text, key_hash text, started_at timestamptz, day date,
        ended_at timestamptz, crashed boolean, platform text, game_version text, os_info text,
        device_info text, steam_id text, device_id text, player_hash bigint,
        started_by_end boolean)
    JOIN api_keys AS k ON k.key_hash = i.key_hash AND k.superseded_at IS NULL
),
s AS (
    INSERT INTO game_sessions AS g (session_token, project_id, started_at, day, ended_at,
        crashed, platform, game_version, os_info, device_info, steam_id, device_id,
        player_hash, started_by_end)
    SELECT session_token, project_id, started_at, day, ended_at, crashed, platform,
        game_version, os_info, device_info, steam_id, device_id, player_hash, started_by_end
    FROM input ORDER BY session_token
    ON CONFLICT (session_token) DO UPDATE
        SET ended_at = COALESCE(g.ended_at, excluded.ended_at),
            crashed = g.crashed OR excluded.crashed
        WHERE g.project_id = excluded.project_id AND excluded.ended_at IS NOT NULL
          AND (g.ended_at IS NULL OR (excluded.crashed AND NOT g.crashed))
    RETURNING new.session_token, new.project_id, new.day, new.started_at, new.game_version,
        new.platform, new.player_hash, new.crashed, old.session_token IS NULL AS inserted,
        COALESCE(NOT old.crashed AND new.crashed, false) AS became_crashed
),
counted AS (
    SELECT project_id, day, game_version, platform, player_hash, started_at,
        date_trunc('minute', started_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS minute,
        CASE WHEN inserted THEN 1 ELSE 0 END AS sessions,
        CASE WHEN (inserted AND crashed) OR became_crashed THEN 1 ELSE 0 END AS crashed
    FROM s WHERE inserted OR became_crashed
),
daily AS (
    INSERT INTO session_daily AS d (project_id, day, game_version, platform, sessions,
        crashed, first_started_at, last_started_at)
    SELECT project_id, day, game_version, platform, sum(sessions), sum(crashed),
        min(started_at), max(started_at)
    FROM counted GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (project_id, day, game_version, platform) DO UPDATE
        SET sessions = d.sessions + excluded.sessions, crashed = d.crashed + excluded.crashed,
            first_started_at = LEAST(d.first_started_at, excluded.first_started_at),
            last_started_at = GREATEST(d.last_started_at, excluded.last_started_at)
),
minutes AS (
    INSERT INTO session_minutes AS m (project_id, minute, sessions, crashed)
    SELECT project_id, minute, sum(sessions), sum(crashed)
    FROM counted GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (project_id, minute) DO UPDATE
        SET sessions = m.sessions + excluded.sessions, crashed = m.crashed + excluded.crashed
),
seen AS (
    SELECT project_id, player_hash,
        min(day) FILTER (WHERE sessions = 1) AS first_day,
        max(day) FILTER (WHERE sessions = 1) AS seen_day,
        max(day) FILTER (WHERE crashed = 1) AS crashed_day
    FROM counted WHERE player_hash IS NOT NULL GROUP BY 1, 2
),
pl AS (
    INSERT INTO players AS p (project_id, player_hash, first_seen_day, last_seen_day,
        last_crashed_day)
    SELECT project_id, player_hash, COALESCE(first_day, crashed_day),
        COALESCE(seen_day, crashed_day), crashed_day
    FROM seen ORDER BY 1, 2
    ON CONFLICT (project_id, player_hash) DO UPDATE
        SET first_seen_day = LEAST(p.first_seen_day, excluded.first_seen_day),
            last_seen_day = GREATEST(p.last_seen_day, excluded.last_seen_day),
            last_crashed_day = GREATEST(p.last_crashed_day, excluded.last_crashed_day)
        WHERE excluded.last_seen_day > p.last_seen_day
           OR excluded.first_seen_day < p.first_seen_day
           OR excluded.last_crashed_day > COALESCE(p.last_crashed_day, '-infinity'::date)
    RETURNING new.project_id, old.last_seen_day AS old_seen, new.last_seen_day AS new_seen,
        old.last_crashed_day AS old_crashed, new.last_crashed_day AS new_crashed
),
deltas AS (
    SELECT project_id, new_seen AS day, 1 AS players, 0 AS crashed_players
        FROM pl WHERE old_seen IS DISTINCT FROM new_seen
    UNION ALL SELECT project_id, old_seen, -1, 0
        FROM pl WHERE old_seen IS NOT NULL AND old_seen <> new_seen
    UNION ALL SELECT project_id, new_crashed, 0, 1
        FROM pl WHERE new_crashed IS NOT NULL AND old_crashed IS DISTINCT FROM new_crashed
    UNION ALL SELECT project_id, old_crashed, 0, -1
        FROM pl WHERE old_crashed IS NOT NULL AND old_crashed IS DISTINCT FROM new_crashed
),
player_counts AS (
    INSERT INTO player_days AS pd (project_id, day, players, crashed_players)
    SELECT project_id, day, sum(players), sum(crashed_players)
    FROM deltas GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (project_id, day) DO UPDATE
        SET players = pd.players + excluded.players,
            crashed_players = pd.crashed_players + excluded.crashed_players
)
SELECT session_token, crashed FROM s
"""

# For the tokens the statement left alone: a repeated start or end (fine), another project's
# token (409), or a key that does not work (401).
CLASSIFY = """
SELECT i.token, k.project_id, g.project_id, g.crashed
FROM unnest(%s::text[], %s::text[]) AS i(token, key_hash)
LEFT JOIN api_keys AS k ON k.key_hash = i.key_hash AND k.superseded_at IS NULL
LEFT JOIN game_sessions AS g ON g.session_token = i.token
"""


def player_key(values: Mapping[str, Any], platform: str) -> str | None:
    """Who played (spec §6): steam_id, else device_id, else (platform, os_info, device_info)."""
    if values.get("steam_id"):
        return f"steam:{values['steam_id']}"
    if values.get("device_id"):
        return f"device:{values['device_id']}"
    os_info, device = values.get("os_info") or "", values.get("device_info") or ""
    if not (platform or os_info or device):
        return None
    return "client:" + json.dumps([platform, os_info, device], separators=(",", ":"))


def player_hash(key: str | None) -> int | None:
    """A signed 64-bit hash of a player key (what `players` is keyed by)."""
    if key is None:
        return None
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big",
                          signed=True)


def _start_row(item: Pending) -> dict[str, Any]:
    v = item.values
    platform = normalize_platform(v.get("platform"))
    at = item.received_at
    return {"session_token": v["session_token"], "key_hash": item.key_hash, "started_at": at,
            "day": at.date(), "ended_at": None, "crashed": False, "platform": platform,
            "game_version": v.get("game_version") or "", "os_info": v.get("os_info"),
            "device_info": v.get("device_info"), "steam_id": v.get("steam_id"),
            "device_id": v.get("device_id"),
            "player_hash": player_hash(player_key(v, platform)), "started_by_end": False}


def _end_row(item: Pending) -> dict[str, Any]:
    at = item.received_at
    return {"session_token": item.values["session_token"], "key_hash": item.key_hash,
            "started_at": at, "day": at.date(), "ended_at": at,
            "crashed": bool(item.values.get("crashed")), "platform": "", "game_version": "",
            "os_info": None, "device_info": None, "steam_id": None, "device_id": None,
            "player_hash": None, "started_by_end": True}


def _fold(batch: Sequence[Pending], indexes: Sequence[int]) -> tuple[
        dict[str, dict[str, Any]], dict[str, list[int]], list[int]]:
    """One row per token (requests applied in arrival order), the requests of each token, and
    the requests left for a second pass (their token came with another key first)."""
    rows: dict[str, dict[str, Any]] = {}
    members: dict[str, list[int]] = {}
    later: list[int] = []
    for i in indexes:
        item = batch[i]
        token = item.values["session_token"]
        row = rows.get(token)
        if row is not None and row["key_hash"] != item.key_hash:
            later.append(i)
            continue
        members.setdefault(token, []).append(i)
        if row is None:
            rows[token] = _start_row(item) if item.kind == "start" else _end_row(item)
        elif item.kind == "end":
            row["ended_at"] = row["ended_at"] or item.received_at
            row["crashed"] = row["crashed"] or bool(item.values.get("crashed"))
    return rows, members, later


def _json(rows: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps(list(rows), default=_plain, separators=(",", ":"))


def _plain(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def answer(kind: str, token: str, crashed: bool) -> SessionStartedOut | SessionEndedOut:
    if kind == "start":
        return {"session_token": token}
    return {"session_token": token, "crashed": crashed}


def write_sessions(pg: psycopg.Connection[Any], batch: Sequence[Pending],
                   indexes: Sequence[int], out: dict[int, Any]) -> None:
    """Write the session items `indexes` of `batch` and commit; put each one's answer (or its
    ApiError) in `out`."""
    pending = list(indexes)
    while pending:
        rows, members, pending = _fold(batch, pending)
        # Two round trips: measured cheaper than one in psycopg's pipeline mode.
        written = {token: crashed for token, crashed in
                   pg.execute(WRITE_SESSIONS, (_json(list(rows.values())),)).fetchall()}
        pg.commit()
        left = [t for t in rows if t not in written]
        for token, crashed in written.items():
            for i in members[token]:
                out[i] = answer(batch[i].kind, token, crashed)
        if left:
            _classify(pg, batch, rows, members, left, out)


def _classify(pg: psycopg.Connection[Any], batch: Sequence[Pending],
              rows: Mapping[str, Mapping[str, Any]], members: Mapping[str, list[int]],
              tokens: list[str], out: dict[int, Any]) -> None:
    found = pg.execute(CLASSIFY, (tokens, [rows[t]["key_hash"] for t in tokens])).fetchall()
    pg.rollback()  # read only; ends the transaction the query opened
    for token, key_project, token_project, crashed in found:
        if key_project is None:
            error: errors.ApiError | None = errors.Unauthorized("Invalid API key")
        elif token_project is None:
            # Neither written nor there: its project was deleted meanwhile. Let it retry.
            error = errors.ServiceUnavailable("The session could not be recorded; retry")
        elif token_project != key_project:
            error = errors.Conflict("This session_token belongs to another project")
        else:
            error = None
        for i in members[token]:
            out[i] = error if error is not None else answer(batch[i].kind, token,
                                                            bool(crashed))
