"""POST /api/perf/snapshot: 201 for what shipped SDKs send, 400 for nonsense, nothing stored
on a refusal."""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask.testing import FlaskClient
from integration.analytics.support import Feeder, ProjectRef

from bugnet_common.db import Database


def snap(client: FlaskClient, project: ProjectRef, **fields: Any) -> Any:
    body = {"fps": 59.8, "frame_time_ms": 16.7, "memory_used_mb": 512, **fields}
    return client.post("/api/perf/snapshot", headers=project.key_headers, json=body)


def stored(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.exec_driver_sql(
            "SELECT project_id, fps, frame_time_ms, memory_used_mb, platform, game_version, "
            "scene, scene_load_ms, custom_metrics, bug_id FROM perf_snapshots ORDER BY created_at")]


def test_a_snapshot_is_stored_with_its_scene_and_normalized_platform(
        client: FlaskClient, feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    bug_id = str(uuid.uuid4())
    r = snap(client, project, platform="win32", game_version="1.4.2", bug_report_id=bug_id,
             custom_metrics={"scene": "res://levels/forest.tscn", "scene_load_ms": 812.5,
                             "draw_calls": 1200})
    assert r.status_code == 201, r.json
    assert set(r.json["data"]) == {"id", "created_at"}
    assert stored(analytics_db) == [{
        "project_id": project.id, "fps": 59.8, "frame_time_ms": 16.7, "memory_used_mb": 512.0,
        "platform": "Windows", "game_version": "1.4.2", "scene": "res://levels/forest.tscn",
        "scene_load_ms": 812.5, "bug_id": bug_id,
        "custom_metrics": {"scene": "res://levels/forest.tscn", "scene_load_ms": 812.5,
                           "draw_calls": 1200}}]


def test_custom_metrics_may_be_a_json_string_and_load_time_in_seconds(
        client: FlaskClient, feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    metrics = json.dumps({"level": "Boss Arena", "load_time": 2.5})
    r = snap(client, project, custom_metrics=metrics)
    assert r.status_code == 201, r.json
    (row,) = stored(analytics_db)
    assert (row["scene"], row["scene_load_ms"]) == ("Boss Arena", 2500.0)
    assert row["custom_metrics"] == {"level": "Boss Arena", "load_time": 2.5}
    assert (row["platform"], row["game_version"]) == ("", "")


def test_nonsense_is_refused_naming_the_field_and_nothing_is_stored(
        client: FlaskClient, feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    cases = [
        ({"fps": "sixty"}, "fps"),
        ({"fps": "60"}, "fps"),
        ({"fps": True}, "fps"),
        ({"fps": None}, "fps"),
        ({"fps": 10 ** 9}, "fps"),
        ({"fps": -1}, "fps"),
        ({"frame_time_ms": -0.5}, "frame_time_ms"),
        ({"frame_time_ms": 1e12}, "frame_time_ms"),
        ({"memory_used_mb": -12}, "memory_used_mb"),
        ({"memory_used_mb": "lots"}, "memory_used_mb"),
        ({"custom_metrics": "{not json"}, "custom_metrics"),
        ({"custom_metrics": "[1, 2]"}, "custom_metrics"),
        ({"custom_metrics": [1, 2]}, "custom_metrics"),
        ({"custom_metrics": {"blob": "x" * 20000}}, "custom_metrics"),
        ({"platform": "p" * 51}, "platform"),
        ({"game_version": "v" * 51}, "game_version"),
        ({"bug_report_id": "not-a-uuid"}, "bug_report_id"),
    ]
    for fields, field in cases:
        r = snap(client, project, **fields)
        assert r.status_code == 400, (fields, r.json)
        assert field in r.json["details"], (fields, r.json)
    r = client.post("/api/perf/snapshot", headers=project.key_headers,
                    data='{"fps": NaN, "frame_time_ms": 1, "memory_used_mb": 1}',
                    content_type="application/json")
    assert r.status_code == 400 and "fps" in r.json["details"]
    for missing in ("fps", "frame_time_ms", "memory_used_mb"):
        body = {"fps": 60, "frame_time_ms": 16, "memory_used_mb": 100}
        del body[missing]
        r = client.post("/api/perf/snapshot", headers=project.key_headers, json=body)
        assert r.status_code == 400 and missing in r.json["details"]
    assert stored(analytics_db) == []


def test_snapshots_need_a_working_key(client: FlaskClient, feed: Feeder,
                                      analytics_db: Database) -> None:
    project = feed.project()
    body = {"fps": 60, "frame_time_ms": 16, "memory_used_mb": 100}
    assert client.post("/api/perf/snapshot", json=body).status_code == 401
    assert client.post("/api/perf/snapshot", json=body,
                       headers={"X-API-Key": "sk_live_" + "z" * 43}).status_code == 401
    assert client.post("/api/perf/snapshot", json={"fps": "bad"},
                       headers={"X-API-Key": "sk_live_" + "z" * 43}).status_code == 401
    old = project.api_key
    feed.rotate_key(project)
    assert client.post("/api/perf/snapshot", json=body,
                       headers={"X-API-Key": old}).status_code == 401
    assert stored(analytics_db) == []
    assert client.post("/api/perf/snapshot", json=body,
                       headers=project.key_headers).status_code == 201
