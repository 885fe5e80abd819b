"""Analytics ingestion through Envoy, as shipped game clients send it: sessions (key in the
header or, Godot-style, only in the body), perf snapshots, satisfaction ratings; the project's
key learned from the bugs service's events, and a regenerated key taking over within 2 s."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
from e2e.support import assert_envelope_error, assert_rate_headers, auth, signup

from bugnet_stack import Stack

# The first test also waits for the session's stack to start (slow on a busy machine).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


def make_project(api: httpx.Client, token: str) -> dict[str, Any]:
    resp = api.post("/projects", json={"name": f"Analytics {uuid.uuid4().hex[:6]}"},
                    headers=auth(token))
    assert resp.status_code == 201, resp.text
    return resp.json()["data"]


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> float:
    started = time.monotonic()
    while not check():  # each check from a fresh client: polling must not hit the rate limit
        assert time.monotonic() - started < timeout, "not reached in time"
        time.sleep(0.05)
    return time.monotonic() - started


def analytics_db(stack: Stack) -> psycopg.Connection[Any]:
    url = stack.database_url("analytics")
    return psycopg.connect("postgresql://" + url.split("://", 1)[1], autocommit=True)


def test_sessions_perf_and_ratings_from_a_game_land_in_analytics(
        new_client: Callable[..., httpx.Client], stack: Stack) -> None:
    studio = new_client()
    token, _, _ = signup(studio)
    project = make_project(studio, token)
    key = {"X-API-Key": project["api_key"]}
    game = new_client()

    # The analytics service learns the new key from the bugs service's project_created.
    learned = wait_for(lambda: new_client().post("/sessions/start", headers=key, json={
        "session_token": f"probe-{uuid.uuid4().hex}"}).status_code == 201)
    print(f"a new project's key worked at analytics after {learned:.2f} s")

    started = game.post("/sessions/start", headers=key, json={
        "session_token": "e2e-one", "platform": "win32", "game_version": "1.0.0",
        "device_info": "RTX 3070", "os_info": "Windows 11", "steam_id": "76561198000000001"})
    assert started.status_code == 201, started.text
    assert started.json() == {"ok": True, "data": {"session_token": "e2e-one"}}
    assert_rate_headers(started)
    # Godot sends the key only in the body, and may use /api/v1.
    godot = new_client("/api/v1")
    body_key = {"api_key": project["api_key"]}
    assert godot.post("/sessions/start", json={**body_key, "session_token": "e2e-two",
                                               "platform": "X11"}).status_code == 201
    ended = godot.post("/sessions/end", json={**body_key, "session_token": "e2e-two",
                                              "crashed": True})
    assert ended.status_code == 200 and ended.json()["data"]["crashed"] is True
    again = godot.post("/sessions/end", json={**body_key, "session_token": "e2e-two",
                                              "crashed": False})
    assert again.status_code == 200 and again.json()["data"]["crashed"] is True
    orphan = game.post("/sessions/end", headers=key, json={"session_token": "e2e-orphan",
                                                           "crashed": False})
    assert orphan.status_code == 200

    snap = game.post("/perf/snapshot", headers=key, json={
        "fps": 58.5, "frame_time_ms": 17.1, "memory_used_mb": 812.0, "platform": "darwin",
        "game_version": "1.0.0",
        "custom_metrics": json.dumps({"scene": "Forest", "scene_load_ms": 950})})
    assert snap.status_code == 201, snap.text
    assert_envelope_error(game.post("/perf/snapshot", headers=key, json={
        "fps": 1e9, "frame_time_ms": 17.1, "memory_used_mb": 812.0}), 400)
    assert_envelope_error(game.post("/sessions/start", json={"session_token": "no-key"}), 401)
    assert_envelope_error(game.post("/sessions/start", headers=key, json={
        "session_token": "x" * 300}), 400)

    with analytics_db(stack) as conn:
        rows = conn.execute(
            "SELECT session_token, platform, game_version, crashed, ended_at IS NOT NULL "
            "FROM game_sessions WHERE project_id = %s AND session_token LIKE 'e2e-%%' "
            "ORDER BY session_token", (project["id"],)).fetchall()
        assert rows == [("e2e-one", "Windows", "1.0.0", False, False),
                        ("e2e-orphan", "", "", False, True),
                        ("e2e-two", "Linux", "", True, True)]
        daily = conn.execute(
            "SELECT sum(sessions), sum(crashed) FROM session_daily WHERE project_id = %s",
            (project["id"],)).fetchone()
        assert daily == (4, 1)  # the probe, e2e-one, e2e-two, e2e-orphan
        perf = conn.execute("SELECT platform, scene, scene_load_ms FROM perf_snapshots "
                            "WHERE project_id = %s", (project["id"],)).fetchall()
        assert perf == [("macOS", "Forest", 950.0)]

    # Ratings: only for a bug the bugs service resolved (analytics learns it from events).
    bug = studio.post(f"/projects/{project['slug']}/bugs", headers=auth(token),
                      json={"title": "Door does not open", "category": "gameplay"})
    assert bug.status_code == 201, bug.text
    bug_id = bug.json()["data"]["id"]
    player = new_client()
    wait_for(lambda: new_client().post("/satisfaction", headers=key, json={
        "bug_id": bug_id, "rating": 5}).status_code == 409)
    resolved = studio.patch(f"/projects/{project['slug']}/bugs/{bug_id}", headers=auth(token),
                            json={"status": "resolved"})
    assert resolved.status_code == 200, resolved.text
    wait_for(lambda: new_client().post("/satisfaction", headers=key, json={
        "bug_id": bug_id, "rating": 2, "steam_id": "765"}).status_code == 201)
    replaced = player.post("/satisfaction", headers=key, json={
        "bug_id": bug_id, "rating": 4, "comment": "Works now", "steam_id": "765"})
    assert replaced.status_code == 201 and replaced.json()["data"]["replaced"] is True
    assert_envelope_error(player.post("/satisfaction", headers=key, json={
        "bug_id": bug_id, "rating": 6}), 400)
    assert_envelope_error(player.post("/satisfaction", headers=key, json={
        "bug_id": str(uuid.uuid4()), "rating": 3}), 404)
    with analytics_db(stack) as conn:
        assert conn.execute("SELECT rating, comment FROM satisfaction_ratings "
                            "WHERE bug_id = %s", (bug_id,)).fetchall() == [(4, "Works now")]


def test_a_regenerated_key_takes_over_at_analytics_within_two_seconds(
        new_client: Callable[..., httpx.Client]) -> None:
    studio = new_client()
    token, _, _ = signup(studio)
    project = make_project(studio, token)
    old = {"X-API-Key": project["api_key"]}
    wait_for(lambda: new_client().post("/sessions/start", headers=old, json={
        "session_token": f"k-{uuid.uuid4().hex}"}).status_code == 201)

    regenerated = studio.post(f"/projects/{project['slug']}/api-key/regenerate",
                              headers=auth(token))
    assert regenerated.status_code == 200, regenerated.text
    new = {"X-API-Key": regenerated.json()["data"]["api_key"]}
    at = time.monotonic()
    wait_for(lambda: new_client().post("/sessions/start", headers=new, json={
        "session_token": f"n-{uuid.uuid4().hex}"}).status_code == 201)
    wait_for(lambda: new_client().post("/sessions/start", headers=old, json={
        "session_token": f"o-{uuid.uuid4().hex}"}).status_code == 401)
    took = time.monotonic() - at
    print(f"regenerated key: new works and old refused at analytics after {took:.2f} s")
    assert took < 2.0
    perf = new_client()
    assert perf.post("/perf/snapshot", headers=new, json={
        "fps": 60, "frame_time_ms": 16.6, "memory_used_mb": 100}).status_code == 201
    assert_envelope_error(perf.post("/perf/snapshot", headers=old, json={
        "fps": 60, "frame_time_ms": 16.6, "memory_used_mb": 100}), 401)
