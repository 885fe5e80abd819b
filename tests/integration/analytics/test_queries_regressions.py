"""Regressions: crash-rate and frame-time detection on the known dataset, recurrences from
`bug_regressed`, never twice, statuses; and the worker's crash signals with their cooldown."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from integration.analytics.queries_support import (
    insert_snapshots,
    load_sessions,
    noon,
    perf_rows,
    today,
)
from integration.analytics.support import Feeder, ProjectRef, insert_sessions

from analytics.models import BUS, Project
from analytics.regressions import handlers as regression_handlers
from analytics.regressions.schedule import run_once
from analytics.regressions.signals import check_signals
from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event, utcnow
from bugnet_common.bus.inbox import process
from bugnet_common.db import Database


def url(project: ProjectRef, path: str = "") -> str:
    return f"/api/projects/{project.slug}/regressions{path}"


def outbox(db: Database, subject: str) -> list[dict[str, Any]]:
    import json
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT payload FROM outbox WHERE subject = :s"),
                            {"s": subject}).scalars().all()
    return [json.loads(bytes(r))["data"] for r in rows]


@pytest.fixture()
def project(feed: Feeder, analytics_db: Database) -> ProjectRef:
    project = feed.project()
    load_sessions(analytics_db, project)
    insert_snapshots(analytics_db, project, perf_rows())
    return project


def test_detect_finds_the_one_crash_rate_and_the_one_frame_time_regression(
        client: FlaskClient, project: ProjectRef, analytics_db: Database) -> None:
    resp = client.post(url(project, "/detect"), headers=project.owner.headers)
    assert resp.status_code == 200, resp.json
    found = {r["kind"]: r for r in resp.json["data"]}
    assert set(found) == {"crash_rate", "frame_time"}
    crash = found["crash_rate"]
    assert (crash["version"], crash["previous_version"], crash["status"]) == (
        "1.10.0", "1.9.0", "open")
    assert crash["details"] == {"crash_free_rate": 95.0, "previous_crash_free_rate": 98.0,
                                "drop": 3.0, "sessions": 400, "crashed": 20,
                                "previous_sessions": 400, "previous_crashed": 8}
    # 1.9.0 vs 1.2.0: equal rates; 1.2.0 vs 1.0.0: only 10 sessions of 1.0.0
    frame = found["frame_time"]
    assert (frame["version"], frame["previous_version"]) == ("1.10.0", "1.9.0")
    assert frame["details"] == {"p50_frame_time_ms": 40.0, "previous_p50_frame_time_ms": 30.0,
                                "increase_percent": 33.33, "snapshots": 60,
                                "previous_snapshots": 60}
    # 1.9.0 (p50 30 ms) vs 1.2.0 (5.5 ms) would be one, but 1.2.0 has only 40 snapshots
    events = outbox(analytics_db, subjects.REGRESSION_DETECTED)
    assert sorted(e["kind"] for e in events) == ["crash_rate", "frame_time"]
    assert {e["regression_id"] for e in events} == {crash["id"], frame["id"]}
    assert all(e["project_slug"] == project.slug for e in events)

    again = client.post(url(project, "/detect"), headers=project.owner.headers,
                        data="", content_type="application/json")
    assert again.status_code == 200 and again.json["data"] == []
    assert run_once(analytics_db)["regressions"] == 0
    assert len(outbox(analytics_db, subjects.REGRESSION_DETECTED)) == 2


def test_concurrent_detection_reports_each_regression_once(
        analytics_app: Any, project: ProjectRef, analytics_db: Database) -> None:
    results: list[Any] = []

    def detect() -> None:
        with analytics_app.test_client() as c:
            results.append(c.post(url(project, "/detect"), headers=project.owner.headers))

    threads = [threading.Thread(target=detect) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status_code == 200 for r in results), [r.json for r in results]
    assert sum(len(r.json["data"]) for r in results) == 2
    assert len(outbox(analytics_db, subjects.REGRESSION_DETECTED)) == 2


def test_status_filter_and_updates(client: FlaskClient, project: ProjectRef,
                                   feed: Feeder) -> None:
    new = client.post(url(project, "/detect"), headers=project.owner.headers).json["data"]
    listed = client.get(url(project), headers=project.owner.headers).json
    assert listed["meta"]["total"] == 2 and {r["id"] for r in listed["data"]} == {
        r["id"] for r in new}
    target = new[0]["id"]
    resp = client.patch(url(project, f"/{target}"), json={"status": "confirmed"},
                        headers=project.owner.headers)
    assert resp.status_code == 200 and resp.json["data"]["status"] == "confirmed"
    resp = client.put(url(project, f"/{new[1]['id']}"), json={"status": "dismissed"},
                      headers=project.owner.headers)
    assert resp.status_code == 200 and resp.json["data"]["status"] == "dismissed"
    for status, expected in (("open", []), ("confirmed", [target]),
                             ("dismissed", [new[1]["id"]])):
        body = client.get(url(project), query_string={"status": status},
                          headers=project.owner.headers).json
        assert [r["id"] for r in body["data"]] == expected
    # a dismissed regression is not raised again
    again = client.post(url(project, "/detect"), headers=project.owner.headers)
    assert again.json["data"] == []
    for bad in ({"status": "open"}, {"status": "bogus"}, {}, {"status": 3}):
        resp = client.patch(url(project, f"/{target}"), json=bad, headers=project.owner.headers)
        assert resp.status_code == 400 and "status" in resp.json["details"], bad
    resp = client.get(url(project), query_string={"status": "closed"},
                      headers=project.owner.headers)
    assert resp.status_code == 400 and resp.json["ok"] is False
    for missing in ("00000000-0000-4000-8000-000000000000", "nope"):
        resp = client.patch(url(project, f"/{missing}"), json={"status": "confirmed"},
                            headers=project.owner.headers)
        assert resp.status_code == 404
    viewer = feed.user("viewer")
    feed.member(project, viewer, "member", permissions=["analytics.view", "bugs.view"])
    resp = client.patch(url(project, f"/{target}"), json={"status": "dismissed"},
                        headers=viewer.headers)
    assert resp.status_code == 403
    assert client.post(url(project, "/detect"), headers=viewer.headers).status_code == 200
    other = feed.project()
    resp = client.patch(f"/api/projects/{other.slug}/regressions/{target}",
                        json={"status": "confirmed"}, headers=other.owner.headers)
    assert resp.status_code == 404


def test_crash_rate_needs_more_than_one_point_and_100_sessions(
        client: FlaskClient, feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    day = today() - timedelta(days=2)
    requests: list[Any] = []
    # 2.0: 100% ; 2.1: exactly 1 point lower ; 2.2: 2 points lower than 2.1 ;
    # 2.3: everything crashed, but only 99 sessions
    for version, count, crashed in (("2.0", 100, 0), ("2.1", 100, 1), ("2.2", 100, 3),
                                    ("2.3", 99, 99)):
        for i in range(count):
            token = f"{version}-{i}"
            at = noon(day, len(requests))
            requests.append(("start", token, {"game_version": version, "platform": "iOS"}, at))
            if i < crashed:
                requests.append(("end", token, {"crashed": True}, at))
    insert_sessions(analytics_db, project.api_key, requests)
    found = client.post(url(project, "/detect"), headers=project.owner.headers).json["data"]
    assert [(r["kind"], r["version"], r["previous_version"]) for r in found] == [
        ("crash_rate", "2.2", "2.1")]
    assert found[0]["details"]["drop"] == 2.0


def regressed_event(project: ProjectRef, bug: dict[str, Any]) -> Event:
    body = {**bug, "status": "open", "resolved_at": None}
    return Event(type=subjects.BUG_REGRESSED, source="bugs", data={
        "bug": body, "changes": {"status": {"from": "resolved", "to": "open"}}})


def test_a_fixed_crash_that_comes_back_in_a_newer_version_is_a_recurrence(
        client: FlaskClient, feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    bug = feed.bug(project, title="Crash on load", category="crash", fingerprint="f-load",
                   game_version="1.2.0", status="resolved")
    feed.occurred(project, bug, 2, game_version="1.1.0", player_key="steam:1")
    feed.occurred(project, bug, 3, game_version="1.9.0", player_key="steam:2")
    event = regressed_event(project, bug)
    # the regressions consumer is ahead of the read model: it waits (the message is retried)
    with pytest.raises(regression_handlers.ReadModelBehind):
        process(analytics_db, BUS, regression_handlers.DURABLE, event,
                regression_handlers.bug_regressed)
    feed.apply(event.type, event.data, event_id=event.id, time=event.time)
    assert process(analytics_db, BUS, regression_handlers.DURABLE, event,
                   regression_handlers.bug_regressed) is True
    body = client.get(url(project), headers=project.owner.headers).json
    assert body["meta"]["total"] == 1
    reg = body["data"][0]
    assert (reg["kind"], reg["version"], reg["previous_version"], reg["bug_id"]) == (
        "recurrence", "1.9.0", "1.2.0", bug["id"])
    assert reg["details"]["title"] == "Crash on load"
    assert reg["details"]["status_before"] == "resolved"
    events = outbox(analytics_db, subjects.REGRESSION_DETECTED)
    assert [(e["kind"], e["bug_id"], e["version"]) for e in events] == [
        ("recurrence", bug["id"], "1.9.0")]
    # the same event again, and another event for the same recurrence: still one
    assert process(analytics_db, BUS, regression_handlers.DURABLE, event,
                   regression_handlers.bug_regressed) is False
    later = regressed_event(project, bug)
    feed.apply(later.type, later.data, event_id=later.id, time=later.time)
    process(analytics_db, BUS, regression_handlers.DURABLE, later,
            regression_handlers.bug_regressed)
    assert client.get(url(project), headers=project.owner.headers).json["meta"]["total"] == 1
    assert len(outbox(analytics_db, subjects.REGRESSION_DETECTED)) == 1


def test_a_recurrence_of_a_deleted_bug_is_skipped(feed: Feeder,
                                                   analytics_db: Database) -> None:
    project = feed.project()
    bug = feed.bug(project, fingerprint="f-x", game_version="1.0", status="resolved")
    event = regressed_event(project, bug)
    feed.delete_bug(project, bug)
    process(analytics_db, BUS, regression_handlers.DURABLE, event,
            regression_handlers.bug_regressed)
    assert outbox(analytics_db, subjects.REGRESSION_DETECTED) == []


def test_crash_signals_fire_once_per_incident(feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    now = utcnow().replace(microsecond=0)
    requests: list[Any] = []
    for i in range(200):  # the day before: 200 sessions, 2 crashed
        at = now - timedelta(minutes=70 + 7 * i)
        requests.append(("start", f"base-{i}", {"platform": "Web"}, at))
        if i < 2:
            requests.append(("end", f"base-{i}", {"crashed": True}, at))
    for i in range(60):  # the last hour: 60 sessions, 15 crashed
        at = now - timedelta(minutes=50) + timedelta(seconds=40 * i)
        requests.append(("start", f"hot-{i}", {"platform": "Web"}, at))
        if i % 4 == 0:
            requests.append(("end", f"hot-{i}", {"crashed": True}, at))
    requests.sort(key=lambda r: r[3])
    insert_sessions(analytics_db, project.api_key, requests)
    with analytics_db.session() as session:
        ref = session.get(Project, project.id)
        assert ref is not None
        emitted = check_signals(session=session, project=ref, now=now)
        assert sorted(e.type for e in emitted) == sorted(
            [subjects.CRASH_SPIKE_DETECTED, subjects.CRASH_FREE_RATE_DROPPED])
        assert check_signals(session=session, project=ref, now=now + timedelta(minutes=5)) == []
    spike = outbox(analytics_db, subjects.CRASH_SPIKE_DETECTED)
    assert len(spike) == 1
    assert (spike[0]["sessions"], spike[0]["crashed_sessions"]) == (60, 15)
    assert spike[0]["baseline_crashed"] == pytest.approx(2 / 24)
    drop = outbox(analytics_db, subjects.CRASH_FREE_RATE_DROPPED)
    assert len(drop) == 1
    assert drop[0]["crash_free_rate"] == 75.0 and drop[0]["previous_rate"] == 99.0
    assert drop[0]["project_slug"] == project.slug


def test_no_signal_for_a_calm_project(feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    now = utcnow()
    insert_sessions(analytics_db, project.api_key, [
        ("start", f"calm-{i}", {"platform": "Web"}, now - timedelta(minutes=30 + i))
        for i in range(80)])
    assert run_once(analytics_db, now=now)["signals"] == 0


def test_the_worker_schedule_detects_on_its_own(project: ProjectRef,
                                                analytics_db: Database) -> None:
    import asyncio

    from analytics.regressions.schedule import detection_schedule

    async def run_for_a_moment() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(detection_schedule(None, analytics_db, signal_interval=0.05,
                                                      detect_interval=0.05)(None, stop))
        deadline = asyncio.get_running_loop().time() + 10
        while not outbox(analytics_db, subjects.REGRESSION_DETECTED):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a few more passes: nothing new
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(run_for_a_moment())
    kinds = sorted(e["kind"] for e in outbox(analytics_db, subjects.REGRESSION_DETECTED))
    assert kinds == ["crash_rate", "frame_time"]
