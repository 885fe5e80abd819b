"""POST /api/sessions/start and /end: every rule of the spec, with the rollups kept exact."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient
from integration.analytics.support import Feeder, ProjectRef, rollup_mismatches

from bugnet_common.db import Database


def start(client: FlaskClient, project: ProjectRef, token: str, **fields: Any) -> Any:
    return client.post("/api/sessions/start", headers=project.key_headers,
                       json={"session_token": token, **fields})


def end(client: FlaskClient, project: ProjectRef, token: str, crashed: bool = False) -> Any:
    return client.post("/api/sessions/end", headers=project.key_headers,
                       json={"session_token": token, "crashed": crashed})


def sessions(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.exec_driver_sql(
            "SELECT session_token, project_id, crashed, ended_at IS NOT NULL AS ended, platform,"
            " game_version, started_by_end FROM game_sessions ORDER BY session_token")]


def daily(db: Database) -> list[tuple[Any, ...]]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(
            "SELECT game_version, platform, sessions, crashed FROM session_daily "
            "ORDER BY 1, 2")]


def players(db: Database) -> tuple[int, int]:
    with db.engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT coalesce(sum(players), 0), "
                                   "coalesce(sum(crashed_players), 0) FROM player_days").one()
    return int(row[0]), int(row[1])


def test_a_session_starts_ends_and_counts_once(client: FlaskClient, feed: Feeder,
                                               analytics_db: Database) -> None:
    project = feed.project()
    r = start(client, project, "tok-1", platform="win32", game_version="1.2.0",
              device_info="RTX", os_info="Windows 11", steam_id="7656")
    assert r.status_code == 201, r.json
    assert r.json == {"ok": True, "data": {"session_token": "tok-1"}}
    r = end(client, project, "tok-1", crashed=False)
    assert r.status_code == 200, r.json
    assert r.json["data"] == {"session_token": "tok-1", "crashed": False}
    assert sessions(analytics_db) == [{
        "session_token": "tok-1", "project_id": project.id, "crashed": False, "ended": True,
        "platform": "Windows", "game_version": "1.2.0", "started_by_end": False}]
    assert daily(analytics_db) == [("1.2.0", "Windows", 1, 0)]
    assert players(analytics_db) == (1, 0)
    assert rollup_mismatches(analytics_db) == {}


def test_crashed_is_sticky_and_ends_are_idempotent(client: FlaskClient, feed: Feeder,
                                                   analytics_db: Database) -> None:
    project = feed.project()
    assert start(client, project, "tok", platform="Linux", steam_id="1").status_code == 201
    assert end(client, project, "tok", crashed=True).json["data"]["crashed"] is True
    again = end(client, project, "tok", crashed=False)
    assert again.status_code == 200 and again.json["data"]["crashed"] is True
    assert end(client, project, "tok", crashed=True).status_code == 200
    assert daily(analytics_db) == [("", "Linux", 1, 1)]
    assert players(analytics_db) == (1, 1)
    assert rollup_mismatches(analytics_db) == {}


def test_an_end_after_a_clean_end_can_still_record_the_crash(
        client: FlaskClient, feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    start(client, project, "tok", platform="Android", device_id="d1")
    end(client, project, "tok", crashed=False)
    assert end(client, project, "tok", crashed=True).json["data"]["crashed"] is True
    assert daily(analytics_db) == [("", "Android", 1, 1)]
    assert rollup_mismatches(analytics_db) == {}


def test_an_end_for_an_unknown_token_records_a_session_and_a_later_start_adds_nothing(
        client: FlaskClient, feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    r = end(client, project, "late-start", crashed=True)
    assert r.status_code == 200 and r.json["data"]["crashed"] is True
    r = start(client, project, "late-start", platform="iOS", game_version="2.0")
    assert r.status_code == 201
    rows = sessions(analytics_db)
    assert [(s["session_token"], s["crashed"], s["started_by_end"]) for s in rows] == [
        ("late-start", True, True)]
    assert daily(analytics_db) == [("", "", 1, 1)]
    assert players(analytics_db) == (0, 0)  # nobody identified
    assert rollup_mismatches(analytics_db) == {}


def test_a_repeated_start_counts_once(client: FlaskClient, feed: Feeder,
                                      analytics_db: Database) -> None:
    project = feed.project()
    for _ in range(3):
        assert start(client, project, "dup", platform="Web").status_code == 201
    assert daily(analytics_db) == [("", "Web", 1, 0)]


def test_the_key_may_come_in_the_body(client: FlaskClient, feed: Feeder,
                                      analytics_db: Database) -> None:
    project = feed.project()
    r = client.post("/api/sessions/start", json={"api_key": project.api_key,
                                                 "session_token": "godot", "platform": "X11"})
    assert r.status_code == 201, r.json
    r = client.post("/api/sessions/end", json={"api_key": project.api_key,
                                               "session_token": "godot", "crashed": True})
    assert r.status_code == 200, r.json
    assert daily(analytics_db) == [("", "Linux", 1, 1)]


def test_missing_malformed_unknown_and_replaced_keys_are_401_and_record_nothing(
        client: FlaskClient, feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    old_key = project.api_key
    feed.rotate_key(project)
    body = {"session_token": "t", "platform": "Windows"}
    cases = [
        ({}, body),
        ({"X-API-Key": "not-a-key"}, body),
        ({}, {**body, "api_key": "sk_live_" + "x" * 43}),
        ({"X-API-Key": old_key}, body),
        ({}, {**body, "api_key": old_key}),
    ]
    for headers, json_body in cases:
        for path in ("/api/sessions/start", "/api/sessions/end"):
            r = client.post(path, headers=headers, json=json_body)
            assert r.status_code == 401, (path, headers, r.json)
            assert r.json["ok"] is False and r.json["error"]
    assert sessions(analytics_db) == []
    assert start(client, project, "t").status_code == 201  # the new key works


def test_bad_bodies_are_400_naming_the_field(client: FlaskClient, feed: Feeder,
                                             analytics_db: Database) -> None:
    project = feed.project()
    cases = [
        ("/api/sessions/start", {}, "session_token"),
        ("/api/sessions/start", {"session_token": "   "}, "session_token"),
        ("/api/sessions/start", {"session_token": "x" * 201}, "session_token"),
        ("/api/sessions/start", {"session_token": "t", "platform": "p" * 51}, "platform"),
        ("/api/sessions/start", {"session_token": "t", "game_version": 12}, "game_version"),
        ("/api/sessions/start", {"session_token": "t", "device_info": "d" * 201}, "device_info"),
        ("/api/sessions/start", {"session_token": "t", "os_info": "o" * 101}, "os_info"),
        ("/api/sessions/start", {"session_token": "t", "steam_id": "1" * 31}, "steam_id"),
        ("/api/sessions/end", {"session_token": "t", "crashed": "sometimes"}, "crashed"),
        ("/api/sessions/end", {"session_token": 5}, "session_token"),
    ]
    for path, body, field in cases:
        r = client.post(path, headers=project.key_headers, json=body)
        assert r.status_code == 400, (body, r.json)
        assert field in r.json["error"] and field in r.json["details"], r.json
    r = client.post("/api/sessions/start", headers=project.key_headers, data="{oops",
                    content_type="application/json")
    assert r.status_code == 400
    r = client.post("/api/sessions/start", headers=project.key_headers, json=[1, 2])
    assert r.status_code == 400
    assert sessions(analytics_db) == []


def test_an_unknown_key_is_401_before_any_complaint_about_the_body(
        client: FlaskClient, feed: Feeder) -> None:
    feed.project()
    r = client.post("/api/sessions/start", headers={"X-API-Key": "sk_live_" + "y" * 43},
                    json={"platform": "p" * 80})
    assert r.status_code == 401


def test_another_projects_token_is_refused_and_changes_nothing(
        client: FlaskClient, feed: Feeder, analytics_db: Database) -> None:
    mine, theirs = feed.project(), feed.project()
    assert start(client, mine, "shared", platform="Windows").status_code == 201
    r = end(client, theirs, "shared", crashed=True)
    assert r.status_code == 409, r.json
    r = start(client, theirs, "shared")
    assert r.status_code == 409, r.json
    rows = sessions(analytics_db)
    assert [(s["project_id"], s["crashed"], s["ended"]) for s in rows] == [(mine.id, False,
                                                                            False)]
    assert daily(analytics_db) == [("", "Windows", 1, 0)]


def test_players_are_told_apart_by_steam_id_device_id_or_client(
        client: FlaskClient, feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    start(client, project, "a1", steam_id="s1", platform="Windows")
    start(client, project, "a2", steam_id="s1", platform="Linux")  # same player
    start(client, project, "b1", device_id="dev-9", platform="Android")
    start(client, project, "c1", platform="win32", os_info="Windows 10", device_info="GTX")
    start(client, project, "c2", platform="Windows", os_info="Windows 10", device_info="GTX")
    start(client, project, "d1", platform="Windows", os_info="Windows 11", device_info="GTX")
    end(client, project, "a2", crashed=True)
    end(client, project, "c1", crashed=True)
    assert players(analytics_db) == (4, 2)
    assert rollup_mismatches(analytics_db) == {}


def test_concurrent_clients_are_all_counted_exactly(client: FlaskClient, feed: Feeder,
                                                    analytics_db: Database,
                                                    analytics_app: Any) -> None:
    project = feed.project()
    statuses: list[int] = []
    lock = threading.Lock()

    def play(n: int) -> None:
        local = analytics_app.test_client()
        got = []
        for i in range(15):
            token = f"c{n}-{i}"
            got.append(start(local, project, token, platform=("Windows", "macOS")[i % 2],
                             game_version=f"1.{i % 3}", steam_id=f"p{(n * 7 + i) % 11}")
                       .status_code)
            got.append(end(local, project, token, crashed=(i % 4 == 0)).status_code)
            if i % 5 == 0:
                got.append(end(local, project, f"orphan-{n}-{i}", crashed=True).status_code)
        with lock:
            statuses.extend(got)

    threads = [threading.Thread(target=play, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(statuses) <= {200, 201}
    with analytics_db.engine.connect() as conn:
        total, crashed = conn.execute(sa.text(
            "SELECT sum(sessions), sum(crashed) FROM session_daily")).one()
    assert (total, crashed) == (12 * 15 + 12 * 3, 12 * 4 + 12 * 3)
    assert rollup_mismatches(analytics_db) == {}


def test_versions_are_kept_as_sent_and_sessions_count_per_platform(
        client: FlaskClient, feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    for i, platform in enumerate(["win32", "Windows", "darwin", "OSX", "macOS", "linux",
                                  "X11", "Android", "iOS", "Web", "Switch"]):
        start(client, project, f"p{i}-{uuid.uuid4().hex[:6]}", platform=platform,
              game_version="1.0")
    assert daily(analytics_db) == [
        ("1.0", "Android", 1, 0), ("1.0", "Linux", 2, 0), ("1.0", "Switch", 1, 0),
        ("1.0", "Web", 1, 0), ("1.0", "Windows", 2, 0), ("1.0", "iOS", 1, 0),
        ("1.0", "macOS", 3, 0)]



def test_the_flask_routes_answer_like_the_fast_path(client: FlaskClient, feed: Feeder,
                                                    analytics_db: Database,
                                                    analytics_settings: Any) -> None:
    from analytics.app import create_app
    from bugnet_common.runtime import runtime_of

    flask_app = create_app(analytics_settings.model_copy(update={"sdk_fast_path": False,
                                                                 "bus_in_api": False}))
    try:
        project = feed.project()

        def exchange(c: FlaskClient, token: str) -> list[Any]:
            return [start(c, project, token, platform="darwin").json,
                    end(c, project, token, crashed=True).json,
                    c.post("/api/sessions/end", json={"session_token": "x"}).json,
                    c.post("/api/sessions/start", headers=project.key_headers,
                           json={"session_token": ""}).json,
                    c.post("/api/perf/snapshot", headers=project.key_headers,
                           json={"fps": 60, "frame_time_ms": 16,
                                 "memory_used_mb": 1}).status_code]

        via_flask = exchange(flask_app.test_client(), "same")
        via_fast_path = exchange(client, "same")
        assert via_flask == via_fast_path
        assert via_flask[:3] == [
            {"ok": True, "data": {"session_token": "same"}},
            {"ok": True, "data": {"session_token": "same", "crashed": True}},
            {"ok": False, "error": "Missing API key: send it as X-API-Key",
             "code": "unauthorized"}]
        assert daily(analytics_db) == [("", "macOS", 1, 1)]
    finally:
        runtime_of(flask_app).close()
