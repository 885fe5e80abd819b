"""Perf snapshots: validated in the request, written in batches (`batching.py`): one INSERT
per batch, its project known from the request's API key (`keys.KeyCache`). Each snapshot's
id is drawn in the request, so a batch retried item by item stores it once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import psycopg
from typing_extensions import TypedDict

from bugnet_common.openapi import Timestamp, Uuid

from ..batching import Pending
from ..platforms import normalize_platform
from .schemas import PerfSnapshotIn, scene_of

INSERT_SNAPSHOTS = """
INSERT INTO perf_snapshots (id, project_id, created_at, day, game_version, platform, fps,
    frame_time_ms, memory_used_mb, scene, scene_load_ms, custom_metrics, bug_id)
SELECT id, project_id, created_at, day, game_version, platform, fps, frame_time_ms,
    memory_used_mb, scene, scene_load_ms, custom_metrics, bug_id
FROM json_populate_recordset(NULL::perf_snapshots, %s::json)
ON CONFLICT (id) DO NOTHING
"""


class SnapshotStoredOut(TypedDict):
    id: Uuid
    created_at: Timestamp


def snapshot_values(data: PerfSnapshotIn) -> dict[str, Any]:
    """What a snapshot stores, from the validated request."""
    metrics = data.custom_metrics if isinstance(data.custom_metrics, dict) else {}
    scene, load_ms = scene_of(metrics)
    return {"game_version": data.game_version or "",
            "platform": normalize_platform(data.platform), "fps": data.fps,
            "frame_time_ms": data.frame_time_ms, "memory_used_mb": data.memory_used_mb,
            "scene": scene, "scene_load_ms": load_ms, "custom_metrics": metrics,
            "bug_id": data.bug_report_id}


def _row(item: Pending) -> dict[str, Any]:
    return {"id": item.values.setdefault("id", str(uuid.uuid4())),
            "project_id": item.project_id, "created_at": item.received_at,
            "day": item.received_at.date(), **{k: v for k, v in item.values.items()
                                               if k != "id"}}


def _plain(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def write_snapshots(pg: psycopg.Connection[Any], batch: Sequence[Pending],
                    out: dict[int, Any]) -> None:
    """Insert the batch's snapshots and commit; each answer is the stored snapshot's id."""
    rows = [_row(item) for item in batch]
    pg.execute(INSERT_SNAPSHOTS, (json.dumps(rows, default=_plain, separators=(",", ":")),))
    pg.commit()
    for i, row in enumerate(rows):
        stored: SnapshotStoredOut = {
            "id": row["id"], "created_at": row["created_at"].isoformat().replace("+00:00", "Z")}
        out[i] = stored
