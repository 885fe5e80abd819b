"""Analytics queries, regressions and the satisfaction summary through Envoy, with exact
figures: a game sends 200 sessions, 100 perf snapshots, crash reports and ratings over the
SDK routes (many source addresses: the SDK class allows 30 requests/minute per IP), the
studio reads every analytics route of HA2 and triages the regressions."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
from e2e.support import assert_envelope_error, auth, signup

PER_CLIENT = 28  # requests per source address, under the SDK class's 30/minute
CRASH = {"title": "NullReferenceException in Renderer.Draw", "category": "crash",
         "priority": "critical",
         "description": "NullReferenceException: Object reference not set\n"
                        "  at Renderer.Draw (Renderer.cs:42)\n  at Game.Loop (Game.cs:7)"}


def eventually(fetch: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def send(new_client: Callable[..., httpx.Client],
         batches: Iterable[list[tuple[str, dict[str, Any], dict[str, str]]]]) -> None:
    """Send each batch of (path, json, headers) in order from its own source address; batches
    run side by side."""

    def run(batch: list[tuple[str, dict[str, Any], dict[str, str]]]) -> None:
        client = new_client()
        for path, body, headers in batch:
            resp = client.post(path, json=body, headers=headers)
            assert resp.status_code in (200, 201), (path, resp.status_code, resp.text)

    batches = list(batches)
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(run, batches))


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def test_analytics_of_a_release_that_regressed(new_client: Callable[..., httpx.Client]) -> None:
    studio = new_client()
    token, _, _ = signup(studio)
    created = studio.post("/projects", json={"name": "Analytics Game"}, headers=auth(token))
    assert created.status_code == 201, created.text
    project = created.json()["data"]
    slug, key = project["slug"], project["api_key"]
    base = f"/projects/{slug}"
    seen = eventually(lambda: studio.get(f"{base}/analytics", headers=auth(token)),
                      lambda r: r.status_code == 200)
    assert seen.status_code == 200, seen.text

    # -- the game: a crash in 1.0.0, fixed, back in 1.1.0; a gameplay bug, fixed and rated
    game = new_client()
    header = {"X-API-Key": key}
    first = game.post("/bugs/submit", headers=header, json={
        **CRASH, "platform": "Windows", "game_version": "1.0.0"})
    assert first.status_code == 201, first.text
    crash_id = first.json()["data"]["id"]
    door = game.post("/bugs/submit", headers=header, json={
        "title": "Door does not open", "category": "gameplay", "priority": "low",
        "platform": "Linux", "game_version": "1.1.0"})
    assert door.status_code == 201, door.text
    door_id = door.json()["data"]["id"]
    for bug_id in (crash_id, door_id):
        fixed = studio.patch(f"{base}/bugs/{bug_id}", json={"status": "resolved"},
                             headers=auth(token))
        assert fixed.status_code == 200, fixed.text
    again = game.post("/bugs/submit", headers=header, json={
        **CRASH, "platform": "Windows", "game_version": "1.1.0", "steam_id": "76561"})
    assert again.status_code in (200, 201), again.text
    assert again.json()["data"]["id"] == crash_id

    # -- 200 sessions: 100 of 1.0.0 (1 crashed), 100 of 1.1.0 (5 crashed), Windows/Linux
    sessions: list[list[tuple[str, dict[str, Any], dict[str, str]]]] = []
    for version, crashed in (("1.0.0", 1), ("1.1.0", 5)):
        for i in range(100):
            token_id = f"{slug}-{version}-{i}"
            start = {"session_token": token_id, "platform": "win32" if i % 2 == 0 else "X11",
                     "game_version": version, "device_info": "GPU", "os_info": "OS",
                     "steam_id": f"{version}-{i}"}
            steps = [("/sessions/start", {**start, "api_key": key}, {})] if i % 3 == 0 else [
                ("/sessions/start", start, header)]
            if i < crashed:
                steps.append(("/sessions/end", {"session_token": token_id, "crashed": True,
                                                "api_key": key}, {}))
            elif i % 4 == 0:
                steps.append(("/sessions/end", {"session_token": token_id, "crashed": False},
                              header))
            sessions.append(steps)
    batches: list[list[tuple[str, dict[str, Any], dict[str, str]]]] = [[]]
    for steps in sessions:
        if len(batches[-1]) + len(steps) > PER_CLIENT:
            batches.append([])
        batches[-1].extend(steps)
    # -- 100 perf snapshots: frame times 10..59 ms in 1.0.0, 20..69 ms in 1.1.0
    snapshots = []
    for version, low in (("1.0.0", 10), ("1.1.0", 20)):
        for i in range(50):
            body: dict[str, Any] = {"fps": 100 - (low + i), "frame_time_ms": low + i,
                                    "memory_used_mb": 512, "platform": "win32",
                                    "game_version": version}
            if version == "1.0.0" and i < 5:
                body["custom_metrics"] = {"scene": "forest", "scene_load_ms": 100 * (i + 1)}
            if version == "1.1.0" and i < 2:
                body["custom_metrics"] = '{"level": "castle", "load_time": 1.5}'
                body["bug_report_id"] = door_id
            snapshots.append(("/perf/snapshot", body, header))
    send(new_client, batches + chunks(snapshots, PER_CLIENT))

    # -- ratings of the fixed door (once its resolution reached analytics)
    rater = new_client()
    rated = eventually(lambda: rater.post("/satisfaction", headers=header, json={
        "bug_id": door_id, "rating": 5, "comment": "Fixed, thanks!",
        "player_email": "fan@example.com"}), lambda r: r.status_code == 201)
    assert rated.status_code == 201, rated.text
    assert rater.post("/satisfaction", headers=header, json={
        "bug_id": door_id, "rating": 2, "steam_id": "765"}).status_code == 201

    reader = new_client()

    def get(path: str, **params: Any) -> dict[str, Any]:
        resp = reader.get(f"{base}{path}", params=params, headers=auth(token))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["ok"] is True
        return body

    today = datetime.now(UTC).date().isoformat()

    # -- crashes
    crashes = eventually(lambda: get("/analytics/crashes")["data"],
                         lambda d: d["sessions"] == 200 and d["top_signatures"]
                         and d["top_signatures"][0]["occurrences"] == 2)
    assert (crashes["sessions"], crashes["crashed_sessions"]) == (200, 6)
    assert crashes["crash_free_rate"] == 97.0
    assert crashes["crash_free_users_rate"] == 97.0  # 200 Steam players, 6 crashed
    assert crashes["platforms"] == [
        {"platform": "Linux", "sessions": 100, "crashed": 2, "crash_free_rate": 98.0},
        {"platform": "Windows", "sessions": 100, "crashed": 4, "crash_free_rate": 96.0}]
    assert crashes["trend"][-1] == {"date": today, "sessions": 200, "crashed": 6,
                                    "crash_free_rate": 97.0}
    assert len(crashes["trend"]) == 30
    top = crashes["top_signatures"][0]
    assert (top["bug_id"], top["title"], top["occurrences"], top["affected_players"],
            top["versions"]) == (crash_id, CRASH["title"], 2, 2, ["1.0.0", "1.1.0"])
    # affected players: the first report's device and the second report's Steam id

    # -- releases
    releases = get("/analytics/releases")
    assert releases["meta"]["total"] == 2
    assert [(r["version"], r["sessions"], r["crashed"], r["crash_free_rate"], r["adoption"],
             r["bugs"], r["new_signatures"]) for r in releases["data"]] == [
        ("1.1.0", 100, 5, 95.0, 50.0, 1, 0), ("1.0.0", 100, 1, 99.0, 50.0, 1, 1)]
    detail = get("/analytics/releases/1.1.0")["data"]
    assert detail["previous_version"] == "1.0.0"
    assert detail["delta"] == {"crash_free_rate": -4.0, "sessions": 0}
    assert detail["platforms"] == [
        {"platform": "Linux", "sessions": 50, "crashed": 2, "crash_free_rate": 96.0},
        {"platform": "Windows", "sessions": 50, "crashed": 3, "crash_free_rate": 94.0}]
    assert detail["trend"][-1]["sessions"] == 100
    assert [(c["bug_id"], c["occurrences"], c["versions"]) for c in detail["top_crashes"]] == [
        (crash_id, 1, ["1.1.0"])]
    assert_envelope_error(reader.get(f"{base}/analytics/releases/9.9.9", headers=auth(token)),
                          404)

    # -- performance
    perf = get("/analytics/performance")["data"]
    assert [(v["version"], v["platform"], v["count"]) for v in perf["versions"]] == [
        ("1.1.0", "Windows", 50), ("1.0.0", "Windows", 50)]
    assert perf["versions"][0]["frame_time_ms"] == {"avg": 44.5, "p50": 44.0, "p95": 67.0}
    assert perf["versions"][1]["frame_time_ms"] == {"avg": 34.5, "p50": 34.0, "p95": 57.0}
    assert perf["versions"][1]["fps"] == {"avg": 65.5, "p50": 65.0, "p95": 88.0}
    assert perf["versions"][1]["memory_used_mb"] == {"avg": 512.0, "p50": 512.0, "p95": 512.0}
    assert perf["scenes"] == [
        {"scene": "forest", "count": 5, "avg_ms": 300.0, "p50_ms": 300.0, "p95_ms": 500.0},
        {"scene": "castle", "count": 2, "avg_ms": 1500.0, "p50_ms": 1500.0, "p95_ms": 1500.0}]
    attached = get(f"/bugs/{door_id}/performance")
    assert attached["meta"]["total"] == 2
    assert {s["frame_time_ms"] for s in attached["data"]} == {20.0, 21.0}

    # -- satisfaction
    mood = get("/analytics/satisfaction")["data"]
    assert (mood["average"], mood["count"]) == (3.5, 2)
    assert mood["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}
    assert mood["trend"][-1] == {"date": today, "average": 3.5, "count": 2}
    assert [(r["bug_id"], r["rating"], r["comment"]) for r in mood["recent"]] == [
        (door_id, 5, "Fixed, thanks!")]

    # -- dashboard (the crash came back: open again)
    board = get("/analytics")["data"]
    assert board["by_status"] == {"open": 1, "in_progress": 0, "resolved": 1, "closed": 0,
                                  "wont_fix": 0}
    assert board["by_priority"]["critical"] == 1 and board["by_priority"]["low"] == 1
    assert board["by_category"]["crash"] == 1 and board["by_category"]["gameplay"] == 1
    assert board["trend"][-1] == {"date": today, "opened": 2, "resolved": 1}

    # -- regressions: the recurrence came from the bugs service's event; detection finds two
    recurrence = eventually(lambda: get("/regressions", status="open")["data"],
                            lambda d: any(r["kind"] == "recurrence" for r in d))
    assert [(r["kind"], r["version"], r["previous_version"], r["bug_id"])
            for r in recurrence] == [("recurrence", "1.1.0", "1.0.0", crash_id)]
    detected = reader.post(f"{base}/regressions/detect", headers=auth(token))
    assert detected.status_code == 200, detected.text
    found = {r["kind"]: r for r in detected.json()["data"]}
    assert set(found) == {"crash_rate", "frame_time"}
    assert found["crash_rate"]["details"]["drop"] == 4.0
    assert (found["frame_time"]["version"], found["frame_time"]["previous_version"]) == (
        "1.1.0", "1.0.0")
    assert found["frame_time"]["details"]["increase_percent"] == 29.41
    assert reader.post(f"{base}/regressions/detect", headers=auth(token)).json()["data"] == []
    confirmed = reader.patch(f"{base}/regressions/{found['crash_rate']['id']}",
                             json={"status": "confirmed"}, headers=auth(token))
    assert confirmed.status_code == 200 and confirmed.json()["data"]["status"] == "confirmed"
    dismissed = reader.put(f"{base}/regressions/{found['frame_time']['id']}",
                           json={"status": "dismissed"}, headers=auth(token))
    assert dismissed.status_code == 200
    assert [r["kind"] for r in get("/regressions", status="open")["data"]] == ["recurrence"]
    assert [r["kind"] for r in get("/regressions", status="confirmed")["data"]] == [
        "crash_rate"]
    assert get("/regressions")["meta"]["total"] == 3
    assert_envelope_error(reader.get(f"{base}/regressions", params={"status": "new"},
                                     headers=auth(token)), 400)
    assert_envelope_error(reader.patch(f"{base}/regressions/{found['crash_rate']['id']}",
                                       json={"status": "open"}, headers=auth(token)), 400)

    # -- the versioned prefix, bad input and strangers
    v1 = new_client("/api/v1")
    assert v1.get(f"{base}/analytics/releases", headers=auth(token)).json()["meta"]["total"] == 2
    assert_envelope_error(reader.get(f"{base}/analytics/crashes", params={"days": 0},
                                     headers=auth(token)), 400)
    assert_envelope_error(reader.get(f"{base}/analytics", params={"days": 400},
                                     headers=auth(token)), 400)
    stranger = new_client()
    other, _, _ = signup(stranger)
    assert_envelope_error(stranger.get(f"{base}/analytics/crashes", headers=auth(other)), 404)
    assert_envelope_error(stranger.get(f"{base}/analytics/crashes"), 401)
