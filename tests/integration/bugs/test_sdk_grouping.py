"""Crash grouping (spec §5, "Crash grouping (decided)"): one bug per crash, occurrences on it,
regressions reopened, and concurrent reports of a new crash counted on one bug."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from integration.bugs.sdk_support import bug_row, counts, outbox

from bugnet_common.bus import subjects
from bugnet_common.bus.events import utcnow
from bugs.models import Activity, Bug, Occurrence

UNITY_TRACE = """NullReferenceException: Object reference not set to an instance of an object
  at Game.Inventory.Open (System.Int32 slot) [0x000{a}] in {root}/Assets/Scripts/Inventory.cs:{line}
  at Game.Player.Update () [0x0001c] in {root}/Assets/Scripts/Player.cs:{line2}
  at UnityEngine.Internal.$MethodUtility.Invoke (System.IntPtr ptr) [0x00000] in <{hexid}>:0"""


def _crash(key: str, client: Any, *, a: str = "12", root: str = "/Users/alice/proj",
           line: int = 88, line2: int = 41, hexid: str = "9a1b2c3d4e5f", version: str = "1.0.0",
           platform: str = "Windows", title: str | None = None, **extra: Any) -> Any:
    trace = UNITY_TRACE.format(a=a, root=root, line=line, line2=line2, hexid=hexid)
    body = {"title": title or "NullReferenceException in Inventory.Open", "category": "crash",
            "priority": "critical", "description": trace, "platform": platform,
            "game_version": version, **extra}
    return client.post("/api/bugs/submit", headers={"X-API-Key": key}, json=body)


def test_the_same_crash_with_other_addresses_lines_and_paths_is_one_bug_with_three_occurrences(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    key = project(user("Owner"))["api_key"]
    first = _crash(key, client, steam_id="1", version="1.2.0", platform="win32")
    second = _crash(key, client, a="7f", root="C:\\Users\\bob\\Game", line=90, line2=45,
                    hexid="00ff00ff00ff", steam_id="2", version="1.10.0", platform="OSX")
    third = _crash(key, client, root="/home/carol/src/game", line=101, line2=3,
                   version="1.9.2", platform="Linux", reporter_name="carol")
    assert [r.status_code for r in (first, second, third)] == [201, 201, 201]
    ids = {r.json["data"]["id"] for r in (first, second, third)}
    assert len(ids) == 1
    assert [r.json["data"]["grouped"] for r in (first, second, third)] == [False, True, True]
    assert third.json["data"]["occurrences"] == 3 and third.json["data"]["number"] == 1

    bug = bug_row(bugs_db, first.json["data"]["id"])
    assert bug.occurrences == 3 and len(bug.fingerprint or "") == 64
    assert bug.first_seen_version == "1.2.0" and bug.last_seen_version == "1.10.0"
    assert bug.versions == ["1.2.0", "1.9.2", "1.10.0"]  # semantic order, not string order
    assert bug.platforms == ["Windows", "macOS", "Linux"]
    assert bug.last_seen_at is not None and bug.last_seen_at >= bug.created_at
    with bugs_db.engine.connect() as conn:
        occ = conn.execute(sa.select(Occurrence.game_version, Occurrence.platform,  # type: ignore[call-overload]
                                     Occurrence.player_key)
                           .where(Occurrence.bug_id == bug.id).order_by(Occurrence.id)).all()
        actions = conn.execute(sa.select(Activity.action).where(  # type: ignore[call-overload]
            Activity.bug_id == bug.id).order_by(Activity.created_at)).scalars().all()
    assert [tuple(o) for o in occ] == [("1.2.0", "Windows", "steam:1"), ("1.10.0", "macOS", "steam:2"),
                                       ("1.9.2", "Linux", "name:carol")]
    assert actions == ["created", "occurred", "occurred"]
    occurred = outbox(bugs_db, subjects.BUG_OCCURRED)
    assert [e["occurrences"] for e in occurred] == [2, 3]
    assert occurred[0]["bug"]["id"] == bug.id and occurred[0]["player_key"] == "steam:2"
    assert occurred[0]["platform"] == "macOS" and occurred[0]["game_version"] == "1.10.0"
    [created] = outbox(bugs_db, subjects.BUG_CREATED)
    assert created["player_key"] == "steam:1"  # the first report's player, for the consumers


def test_a_different_stack_or_message_is_a_different_bug(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    key = project(user("Owner"))["api_key"]
    a = _crash(key, client)
    other_stack = client.post("/api/bugs/submit", headers={"X-API-Key": key}, json={
        "title": "NullReferenceException in Inventory.Open", "category": "crash",
        "description": "NullReferenceException: Object reference not set to an instance of an object\n"
                       "  at Game.Shop.Buy () [0x00012] in /x/Shop.cs:10\n"})
    other_message = _crash(key, client, title="IndexOutOfRangeException in Inventory.Open")
    ids = [r.json["data"]["id"] for r in (a, other_stack, other_message)]
    assert len(set(ids)) == 3
    assert counts(bugs_db)["bugs"] == 3 and counts(bugs_db)["occurrences"] == 3


def test_non_crash_reports_are_never_grouped(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    key = project(user("Owner"))["api_key"]
    body = {"title": "Typo in the main menu", "category": "ui"}
    ids = {client.post("/api/bugs/submit", headers={"X-API-Key": key}, json=body).json["data"]["id"]
           for _ in range(2)}
    assert len(ids) == 2
    assert all(bug_row(bugs_db, i).fingerprint is None for i in ids)
    assert counts(bugs_db)["occurrences"] == 0


def test_an_error_title_groups_even_outside_the_crash_category(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    key = project(user("Owner"))["api_key"]
    ids = {client.post("/api/bugs/submit", headers={"X-API-Key": key}, json={
        "title": f"[Error] Texture {n} failed to load from res://tex/{n}.png", "category": "visual",
    }).json["data"]["id"] for n in (3, 17)}
    assert len(ids) == 1


def test_the_same_crash_in_another_project_is_another_bug(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    a = _crash(project(owner, name="Game One")["api_key"], client)
    b = _crash(project(owner, name="Game Two")["api_key"], client)
    assert a.json["data"]["id"] != b.json["data"]["id"]
    assert bug_row(bugs_db, a.json["data"]["id"]).fingerprint == bug_row(bugs_db, b.json["data"]["id"]).fingerprint


def _resolve(bugs_db: Any, bug_id: str, version: str | None, status: str = "resolved") -> None:
    with bugs_db.begin() as session:
        bug = session.get(Bug, bug_id)
        bug.status, bug.resolved_in_version = status, version
        bug.resolved_at = utcnow() - timedelta(hours=1)


def test_a_fixed_crash_recurring_in_a_newer_version_reopens_as_a_regression(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    key = project(user("Owner"))["api_key"]
    bug_id = _crash(key, client, version="1.9.0").json["data"]["id"]
    _resolve(bugs_db, bug_id, "1.9.2")

    older = _crash(key, client, version="1.9.1")
    same = _crash(key, client, version="v1.9.2+build.77")
    unknown = _crash(key, client, version="unknown")
    for resp in (older, same, unknown):
        assert resp.status_code == 201 and resp.json["data"]["id"] == bug_id
        assert resp.json["data"]["status"] == "resolved" and resp.json["data"]["regressed"] is False
    assert not outbox(bugs_db, subjects.BUG_REGRESSED)

    newer = _crash(key, client, version="1.10.0")
    assert newer.json["data"]["id"] == bug_id and newer.json["data"]["regressed"] is True
    assert newer.json["data"]["status"] == "open" and newer.json["data"]["is_regression"] is True
    bug = bug_row(bugs_db, bug_id)
    assert (bug.status, bug.resolved_at, bug.is_regression, bug.occurrences) == ("open", None, True, 5)
    assert bug.last_seen_version == "1.10.0"

    regressed = outbox(bugs_db, subjects.BUG_REGRESSED)
    updated = outbox(bugs_db, subjects.BUG_UPDATED)
    assert len(regressed) == 1 and len(updated) == 1
    assert regressed[0]["bug"]["status"] == "open"
    assert updated[0]["changes"]["status"] == {"from": "resolved", "to": "open"}
    with bugs_db.engine.connect() as conn:
        entry = conn.execute(sa.select(Activity.field, Activity.from_value, Activity.to_value)  # type: ignore[call-overload]
                             .where(Activity.bug_id == bug_id, Activity.action == "regressed")).one()
    assert tuple(entry) == ("status", "resolved", "open")

    # Once open, further reports only count.
    again = _crash(key, client, version="1.11.0")
    assert again.json["data"]["regressed"] is False and len(outbox(bugs_db, subjects.BUG_REGRESSED)) == 1


def test_a_closed_crash_without_a_recorded_fix_version_compares_with_the_last_seen_one(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    key = project(user("Owner"))["api_key"]
    bug_id = _crash(key, client, version="2.0.0-beta.2").json["data"]["id"]
    _resolve(bugs_db, bug_id, None, status="closed")
    assert _crash(key, client, version="2.0.0-beta.1").json["data"]["status"] == "closed"
    assert _crash(key, client, version="2.0.0").json["data"]["status"] == "open"


def test_won_t_fix_crashes_are_not_reopened(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    key = project(user("Owner"))["api_key"]
    bug_id = _crash(key, client, version="1.0.0").json["data"]["id"]
    _resolve(bugs_db, bug_id, "1.0.0", status="wont_fix")
    assert _crash(key, client, version="9.0.0").json["data"]["status"] == "wont_fix"


def test_ten_concurrent_first_reports_of_a_crash_make_one_bug_with_ten_occurrences(bugs_app, client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    key = project(user("Owner"))["api_key"]
    start = threading.Barrier(10)
    results: list[tuple[int, str]] = []
    failures: list[BaseException] = []

    def report(n: int) -> None:
        try:
            local = bugs_app.test_client()
            start.wait(10)
            resp = _crash(key, local, steam_id=str(n), version=f"1.0.{n}")
            results.append((resp.status_code, resp.json["data"]["id"]))
        except BaseException as exc:  # surfaced below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=report, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures
    assert [status for status, _ in results] == [201] * 10
    assert len({bug_id for _, bug_id in results}) == 1
    bug = bug_row(bugs_db, results[0][1])
    assert bug.occurrences == 10 and bug.last_seen_version == "1.0.9" and len(bug.versions) == 10
    assert counts(bugs_db)["bugs"] == 1 and counts(bugs_db)["occurrences"] == 10
    [created] = outbox(bugs_db, subjects.BUG_CREATED)
    occurred = outbox(bugs_db, subjects.BUG_OCCURRED)
    assert len(occurred) == 9
    # Every player once: the first report's in bug_created, the nine others' in bug_occurred.
    assert sorted([created["player_key"]] + [e["player_key"] for e in occurred]) == sorted(
        f"steam:{n}" for n in range(10))
