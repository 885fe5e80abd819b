"""The batched submit path (bugs/sdk/ingest.py): many reports in one transaction store what the
one-report path stores, a report that cannot be stored fails alone, and concurrent submits
through the api get unique, gap-free numbers with every accepted report committed."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from integration.bugs.sdk_support import bug_row, counts, outbox

from bugnet_common import apikeys
from bugnet_common.bus import subjects
from bugnet_common.bus.events import utcnow
from bugs.models import Activity, Bug, Occurrence, Project
from bugs.reports.schemas import BugIn
from bugs.sdk import ingest, service
from bugs.sdk.schemas import SdkReportIn
from bugs.sdk.storage import LocalStorage

TRACE = """IndexOutOfRangeException: Index was outside the bounds of the array.
  at Game.AI.PathGrid:GetNode (System.Int32 x, System.Int32 y) (at Assets/Scripts/AI/PathGrid.cs:{line})
  at Game.AI.EnemyBrain:Update () (at Assets/Scripts/AI/EnemyBrain.cs:57)"""
OTHER_TRACE = """KeyNotFoundException: The given key 'sfx' was not present in the dictionary.
  at Game.Audio.SoundBank:Play (System.String id) (at Assets/Scripts/Audio/SoundBank.cs:{line})"""


def _report(title: str = "Player falls through the bridge", **fields: Any) -> BugIn:
    body = {"title": title, "description": "Every time, level 3.", "category": "gameplay",
            "steps_to_reproduce": "1. Load level 3\n2. Walk onto the bridge", "platform": "win32",
            "game_version": "1.4.2", "os_info": "Windows 10.0.22631", **fields}
    return SdkReportIn.model_validate(body).bug_in()


def _crash(trace: str = TRACE, line: int = 40, **fields: Any) -> BugIn:
    return _report(title="[Error] " + trace.splitlines()[0], category="crash",
                   description=trace.format(line=line), **fields)


@pytest.fixture()
def conn(bugs_db) -> Iterator[psycopg.Connection[Any]]:  # type: ignore[no-untyped-def]
    pooled = bugs_db.engine.raw_connection()
    try:
        yield pooled.driver_connection
    finally:
        pooled.close()


@pytest.fixture()
def proj(client, user, project) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    created = project(user("Owner"))
    return {**created, "key_hash": apikeys.hash_api_key(created["api_key"])}


def _write(pg: psycopg.Connection[Any], items: list[ingest.Pending]) -> dict[int, dict[str, Any]]:
    return ingest.write_batch(pg, items)


def test_one_batch_of_plain_reports_crashes_and_a_regression_stores_what_single_submits_store(client, proj, conn, bugs_db) -> None:  # type: ignore[no-untyped-def]
    key, key_hash = proj["api_key"], proj["key_hash"]
    # A crash seen before, fixed in 2.0.0.
    fixed = client.post("/api/bugs/submit", headers={"X-API-Key": key}, json={
        "title": "[Error] " + OTHER_TRACE.splitlines()[0], "category": "crash",
        "description": OTHER_TRACE.format(line=10), "game_version": "1.9.0"}).json["data"]
    with bugs_db.begin() as session:
        bug = session.get(Bug, fixed["id"])
        bug.status, bug.resolved_in_version = "resolved", "2.0.0"
        bug.resolved_at = utcnow() - timedelta(hours=1)
    before = counts(bugs_db)

    items = [
        ingest.Pending.of(key_hash, _report("Plain one")),
        ingest.Pending.of(key_hash, _crash(line=40, steam_id="1", game_version="1.0.0")),
        ingest.Pending.of("0" * 64, _report("Unknown key")),
        ingest.Pending.of(key_hash, _crash(OTHER_TRACE, line=11, game_version="1.9.5")),
        ingest.Pending.of(key_hash, _crash(line=41, steam_id="2", game_version="1.2.0",
                                           platform="OSX")),
        ingest.Pending.of(key_hash, _report("Plain two")),
        ingest.Pending.of(key_hash, _crash(OTHER_TRACE, line=12, game_version="2.1.0")),
        ingest.Pending.of(key_hash, _crash(line=42, reporter_name="carol", game_version="1.1.0")),
    ]
    answers = _write(conn, items)

    assert sorted(answers) == [0, 1, 3, 4, 5, 6, 7]  # the unknown key is refused alone
    plain = [answers[0], answers[5]]
    assert [a["number"] for a in plain] == [2, 3] and {a["grouped"] for a in plain} == {False}
    new_crash = [answers[i] for i in (1, 4, 7)]
    assert len({a["id"] for a in new_crash}) == 1 and new_crash[0]["number"] == 4
    assert [(a["grouped"], a["occurrences"]) for a in new_crash] == [(False, 1), (True, 2), (True, 3)]
    old_crash = [answers[3], answers[6]]
    assert {a["id"] for a in old_crash} == {fixed["id"]}
    assert [(a["occurrences"], a["status"], a["regressed"]) for a in old_crash] == [
        (2, "resolved", False), (3, "open", True)]

    after = counts(bugs_db)
    assert {k: after[k] - before[k] for k in after} == {
        "bugs": 3, "occurrences": 5, "attachments": 0,
        "activity": 3 + 2 + 2 + 1,  # created x3, occurred x2 (new crash), occurred x2 + regressed
        "outbox": 3 + 2 + 2 + 2}  # created x3, occurred x4, regressed + updated
    grouped = bug_row(bugs_db, new_crash[0]["id"])
    assert (grouped.occurrences, grouped.first_seen_version, grouped.last_seen_version) == (
        3, "1.0.0", "1.2.0")
    assert grouped.versions == ["1.0.0", "1.1.0", "1.2.0"]
    assert grouped.platforms == ["Windows", "macOS"]
    reopened = bug_row(bugs_db, fixed["id"])
    assert (reopened.status, reopened.is_regression, reopened.resolved_at, reopened.occurrences) == (
        "open", True, None, 3)
    with bugs_db.engine.connect() as conn:
        players = conn.execute(sa.select(Occurrence.player_key).where(  # type: ignore[call-overload]
            Occurrence.bug_id == grouped.id).order_by(Occurrence.id)).scalars().all()
        actions = conn.execute(sa.select(Activity.action).where(  # type: ignore[call-overload]
            Activity.bug_id == fixed["id"]).order_by(Activity.created_at, Activity.action)).scalars().all()
    assert players == ["steam:1", "steam:2", "name:carol"]
    assert actions == ["created", "occurred", "occurred", "regressed"]
    assert len(outbox(bugs_db, subjects.BUG_REGRESSED)) == 1
    occurred = outbox(bugs_db, subjects.BUG_OCCURRED)
    assert [e["occurrences"] for e in occurred if e["bug"]["id"] == grouped.id] == [2, 3]


def test_a_plain_report_is_the_same_bug_and_event_as_on_the_one_report_path(proj, conn, bugs_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = {"title": "Horse stuck in a wall", "description": "Near the mill.", "category": "gameplay",
            "priority": "high", "steps": "Ride east", "platform": "darwin", "game_version": "0.9.1",
            "os_info": "macOS 14", "device_info": "M2", "steam_id": "7656", "reporter_name": "ann",
            "player_email": "ann@example.com", "expected": "walk", "actual": "stuck"}
    fast = _write(conn, [ingest.Pending.of(proj["key_hash"], SdkReportIn.model_validate(data).bug_in())])[0]
    with bugs_db.session() as session:
        project = session.get(Project, proj["id"])
        slow = service.submit_report(session=session, project=project,
                                     data=SdkReportIn.model_validate(data),
                                     storage=LocalStorage(tmp_path), max_screenshot_bytes=1000)
        slow_out = service.submitted_out(slow, project)

    def comparable(bug_id: str) -> dict[str, Any]:
        row = bug_row(bugs_db, bug_id).model_dump()
        return {k: v for k, v in row.items()
                if k not in {"id", "number", "created_at", "updated_at", "last_seen_at"}}

    assert comparable(fast["id"]) == comparable(slow_out["id"])
    differ = {"id", "number", "created_at", "last_seen_at"}
    assert {k: v for k, v in fast.items() if k not in differ} == {
        k: v for k, v in slow_out.items() if k not in differ}
    events = outbox(bugs_db, subjects.BUG_CREATED)
    assert len(events) == 2
    for e in events:
        for k in ("id", "number", "created_at", "url"):
            e["bug"].pop(k)
    assert events[0] == events[1]
    with bugs_db.engine.connect() as conn:
        entries = conn.execute(sa.select(Activity.action, Activity.actor_id, Activity.field)  # type: ignore[call-overload]
                               .where(Activity.bug_id.in_([fast["id"], slow_out["id"]]))).all()
    assert sorted(tuple(e) for e in entries) == [("created", None, None)] * 2


def test_a_report_that_cannot_be_stored_fails_alone_and_the_rest_of_its_batch_is_stored(proj, bugs_db) -> None:  # type: ignore[no-untyped-def]
    # A value no column takes (pydantic would refuse it; built around validation on purpose).
    broken = BugIn.model_construct(**{**_report("Broken").model_dump(), "category": "x" * 40})
    items = [ingest.Pending.of(proj["key_hash"], _report("First")),
             ingest.Pending.of(proj["key_hash"], broken),
             ingest.Pending.of(proj["key_hash"], _report("Third"))]
    before = counts(bugs_db)
    ingest._Writer(bugs_db, queue.SimpleQueue(), 64).write(items)
    assert all(item.done.is_set() for item in items)
    assert items[0].result and items[2].result and items[1].result is None
    assert isinstance(items[1].error, psycopg.errors.StringDataRightTruncation)
    after = counts(bugs_db)
    assert (after["bugs"] - before["bugs"], after["outbox"] - before["outbox"]) == (2, 2)


def test_concurrent_submits_are_all_stored_with_unique_numbers(bugs_app, proj, bugs_db) -> None:  # type: ignore[no-untyped-def]
    key = proj["api_key"]
    start = threading.Barrier(24)
    answers: list[Any] = []
    failures: list[BaseException] = []

    def submit(n: int) -> None:
        try:
            local = bugs_app.test_client()
            body: dict[str, Any] = {"title": f"Report {n}", "category": "gameplay"}
            if n % 3 == 0:
                body = {"title": "[Error] " + TRACE.splitlines()[0], "category": "crash",
                        "description": TRACE.format(line=n), "steam_id": str(n)}
            start.wait(10)
            resp = local.post("/api/bugs/submit", headers={"X-API-Key": key}, json=body)
            answers.append((resp.status_code, resp.json["data"]))
        except BaseException as exc:  # surfaced below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures and [status for status, _ in answers] == [201] * 24
    ids = {data["id"] for _, data in answers}
    assert len(ids) == 16 + 1  # 16 plain reports, 8 reports of one crash
    with bugs_db.engine.connect() as conn:
        numbers = conn.execute(sa.select(Bug.number).where(  # type: ignore[call-overload]
            Bug.project_id == proj["id"])).scalars().all()
        crash = conn.execute(sa.select(Bug.occurrences).where(  # type: ignore[call-overload]
            Bug.project_id == proj["id"], Bug.fingerprint.is_not(None))).scalar_one()
    assert sorted(numbers) == list(range(1, 18)) and crash == 8
    assert counts(bugs_db)["occurrences"] == 8


def test_an_unknown_key_with_a_bad_body_is_still_a_401(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/api/bugs/submit", headers={"X-API-Key": apikeys.generate_api_key()},
                       json={"title": ""})
    assert resp.status_code == 401
    resp = client.post("/api/bugs/submit", headers={"X-API-Key": apikeys.generate_api_key()},
                       json={"title": "ok"})
    assert resp.status_code == 401 and resp.json["ok"] is False and "data" not in resp.json
