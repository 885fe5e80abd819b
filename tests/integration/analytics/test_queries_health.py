"""Crash and release health, and the bug dashboard, on a known dataset (queries_support):
exact rates, adoption, trends, platform splits, crash groups and the errors of bad input."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from integration.analytics.queries_support import Dataset, load_sessions, noon, today
from integration.analytics.support import Feeder, ProjectRef, rollup_mismatches

from bugnet_common.bus import subjects
from bugnet_common.db import Database


def rate(sessions: int, crashed: int) -> float | None:
    return None if not sessions else round((sessions - crashed) / sessions * 100 + 1e-9, 2)


@pytest.fixture()
def world(feed: Feeder, analytics_db: Database) -> tuple[ProjectRef, Dataset, dict[str, Any]]:
    project = feed.project()
    data = load_sessions(analytics_db, project)
    mismatches = rollup_mismatches(analytics_db)
    assert mismatches == {}
    day3 = (today() - timedelta(days=3)).isoformat() + "T08:00:00Z"
    render = feed.bug(project, title="Crash in renderer", category="crash", priority="high",
                      fingerprint="f-render", game_version="1.9.0", platform="win32",
                      created_at=day3, player_key="steam:p4")
    for key in ("steam:p1", "steam:p2", "steam:p2", "steam:p3", None):
        feed.occurred(project, render, 2, game_version="1.10.0", platform="win32",
                      player_key=key)
    audio = feed.bug(project, title="Crash in audio", category="crash", fingerprint="f-audio",
                     game_version="1.10.0", platform="X11", created_at=day3)
    feed.occurred(project, audio, 2, game_version="1.10.0", platform="X11",
                  player_key="steam:p1")
    feed.occurred(project, audio, 3, game_version="1.10.0", platform="X11",
                  player_key="steam:p1")
    feed.bug(project, title="Door stuck", category="gameplay", game_version="1.10.0",
             created_at=day3)
    return project, data, {"render": render, "audio": audio}


def get(client: FlaskClient, project: ProjectRef, path: str, **query: Any) -> Any:
    resp = client.get(f"/api/projects/{project.slug}{path}", query_string=query,
                      headers=project.owner.headers)
    assert resp.status_code == 200, resp.json
    assert resp.json["ok"] is True
    return resp.json


def test_crash_figures_are_exact_over_the_window(client: FlaskClient, world: Any) -> None:
    project, data, bugs = world
    body = get(client, project, "/analytics/crashes")["data"]
    assert body["sessions"] == 1003 and body["crashed_sessions"] == 32
    assert body["crash_free_rate"] == 96.81  # 971 / 1003
    # 300 Steam players + 1 anonymous device, 32 of them crashed
    assert body["crash_free_users_rate"] == 89.37
    assert body["platforms"] == [
        {"platform": "Linux", "sessions": 500, "crashed": 8, "crash_free_rate": 98.4},
        {"platform": "Windows", "sessions": 500, "crashed": 24, "crash_free_rate": 95.2},
        {"platform": "unknown", "sessions": 3, "crashed": 0, "crash_free_rate": 100.0},
    ]
    assert len(body["trend"]) == 30
    assert body["trend"][-1] == {"date": today().isoformat(), "sessions": 0, "crashed": 0,
                                 "crash_free_rate": None}
    per_day = Counter(s["day"] for s in data.sessions)
    crashed_day = Counter(s["day"] for s in data.sessions if s["crashed"])
    for point in body["trend"][-4:-1]:
        day = next(d for d in per_day if d.isoformat() == point["date"])
        assert point["sessions"] == per_day[day]
        assert point["crashed"] == crashed_day[day]
        assert point["crash_free_rate"] == rate(per_day[day], crashed_day[day])
    assert sum(p["sessions"] for p in body["trend"]) == 1003
    render, audio = bugs["render"], bugs["audio"]
    assert [s["bug_id"] for s in body["top_signatures"]] == [render["id"], audio["id"]]
    top = body["top_signatures"][0]
    assert top["fingerprint"] == "f-render" and top["title"] == "Crash in renderer"
    assert top["occurrences"] == 6  # the first report and five more
    assert top["affected_players"] == 4  # p4 (the first report), p1, p2, p3
    assert top["versions"] == ["1.9.0", "1.10.0"]
    assert top["first_seen"] == render["created_at"]
    assert body["top_signatures"][1]["occurrences"] == 3
    assert body["top_signatures"][1]["affected_players"] == 1


def test_a_one_day_window_and_an_old_window(client: FlaskClient, world: Any) -> None:
    project, data, _ = world
    body = get(client, project, "/analytics/crashes", days=2)["data"]
    yesterday = today() - timedelta(days=1)
    expected = [s for s in data.sessions if s["day"] == yesterday]
    assert body["sessions"] == len(expected)
    assert body["crashed_sessions"] == sum(s["crashed"] for s in expected)
    assert len(body["trend"]) == 2
    body = get(client, project, "/analytics/crashes", days=365)["data"]
    assert body["sessions"] == 1013 and body["crashed_sessions"] == 42  # 1.0.0 included


def test_releases_newest_first_with_adoption_and_bugs(client: FlaskClient, world: Any) -> None:
    project, _, _ = world
    body = get(client, project, "/analytics/releases")
    assert body["meta"] == {"page": 1, "limit": 20, "total": 3, "pages": 1}
    releases = body["data"]
    assert [r["version"] for r in releases] == ["1.10.0", "1.9.0", "1.2.0"]
    newest = releases[0]
    assert {k: newest[k] for k in ("sessions", "crashed", "crash_free_rate", "adoption", "bugs",
                                   "new_signatures")} == {
        "sessions": 400, "crashed": 20, "crash_free_rate": 95.0, "adoption": 39.88,
        "bugs": 2, "new_signatures": 1}
    assert releases[1]["adoption"] == 39.88 and releases[1]["crash_free_rate"] == 98.0
    assert releases[1]["bugs"] == 1 and releases[1]["new_signatures"] == 1
    assert releases[2]["adoption"] == 19.94 and releases[2]["crash_free_rate"] == 98.0
    assert releases[2]["bugs"] == 0
    first = noon(today() - timedelta(days=3), 2)  # session 2 is the first on the oldest day
    assert releases[2]["first_seen"] == first.isoformat().replace("+00:00", "Z")
    assert releases[0]["last_seen"] < noon(today()).isoformat().replace("+00:00", "Z")
    paged = get(client, project, "/analytics/releases", limit=2, page=2)
    assert [r["version"] for r in paged["data"]] == ["1.2.0"]
    assert paged["meta"]["pages"] == 2


def test_release_detail_with_trend_platforms_crashes_and_delta(client: FlaskClient,
                                                               world: Any) -> None:
    project, _, bugs = world
    body = get(client, project, "/analytics/releases/1.10.0")["data"]
    assert body["version"] == "1.10.0" and body["sessions"] == 400
    assert body["previous_version"] == "1.9.0"
    assert body["delta"] == {"crash_free_rate": -3.0, "sessions": 0}
    assert body["platforms"] == [
        {"platform": "Linux", "sessions": 200, "crashed": 5, "crash_free_rate": 97.5},
        {"platform": "Windows", "sessions": 200, "crashed": 15, "crash_free_rate": 92.5},
    ]
    assert sum(p["sessions"] for p in body["trend"]) == 400
    assert sum(p["crashed"] for p in body["trend"]) == 20
    crashes = body["top_crashes"]
    assert [(c["bug_id"], c["occurrences"], c["affected_players"]) for c in crashes] == [
        (bugs["render"]["id"], 5, 3), (bugs["audio"]["id"], 3, 1)]
    # 1.0.0 is older than 1.2.0 but had no session in the window
    oldest = get(client, project, "/analytics/releases/1.2.0")["data"]
    assert oldest["previous_version"] == "1.0.0"
    assert oldest["delta"] == {"crash_free_rate": None, "sessions": 200}
    old = get(client, project, "/analytics/releases/1.0.0")["data"]
    assert old["sessions"] == 0 and old["crash_free_rate"] is None
    assert old["previous_version"] is None and old["delta"]["sessions"] is None


def test_versions_sort_semantically_then_by_first_seen(feed: Feeder, client: FlaskClient,
                                                       analytics_db: Database) -> None:
    from integration.analytics.support import insert_sessions
    project = feed.project()
    day = today() - timedelta(days=1)
    sent = ["1.9.2", "nightly-b", "1.10.0", "nightly-a", "v1.2-beta", "1.2"]
    insert_sessions(analytics_db, project.api_key, [
        ("start", f"t{i}", {"game_version": v, "platform": "Web"}, noon(day, i))
        for i, v in enumerate(sent)])
    body = get(client, project, "/analytics/releases")["data"]
    assert [r["version"] for r in body] == ["1.10.0", "1.9.2", "1.2", "v1.2-beta",
                                            "nightly-a", "nightly-b"]


def test_dashboard_counts_bugs_and_the_opened_resolved_trend(client: FlaskClient,
                                                             feed: Feeder) -> None:
    project = feed.project()
    d1 = today() - timedelta(days=1)
    d5 = today() - timedelta(days=5)
    at = lambda d, h=10: f"{d.isoformat()}T{h:02d}:00:00Z"  # noqa: E731
    feed.bug(project, category="crash", priority="high", created_at=at(d5))
    feed.bug(project, category="crash", priority="critical", created_at=at(d5),
             status="resolved", resolved_at=at(d1))
    feed.bug(project, category="ui", created_at=at(d1), status="closed", resolved_at=at(d1, 11))
    feed.bug(project, category="audio", created_at=at(d1), status="in_progress")
    feed.bug(project, created_at=at(today() - timedelta(days=40)))
    body = get(client, project, "/analytics")["data"]
    assert body["by_status"] == {"open": 2, "in_progress": 1, "resolved": 1, "closed": 1,
                                 "wont_fix": 0}
    assert body["by_priority"] == {"low": 0, "medium": 3, "high": 1, "critical": 1}
    assert body["by_category"]["crash"] == 2 and body["by_category"]["ui"] == 1
    assert body["by_category"]["other"] == 1 and body["by_category"]["network"] == 0
    trend = {p["date"]: (p["opened"], p["resolved"]) for p in body["trend"]}
    assert len(trend) == 30
    assert trend[d5.isoformat()] == (2, 0)
    assert trend[d1.isoformat()] == (2, 2)
    assert sum(o for o, _ in trend.values()) == 4  # the 40-day-old bug is outside
    assert len(get(client, project, "/analytics", days=7)["data"]["trend"]) == 7


@pytest.mark.parametrize("path", ["/analytics", "/analytics/crashes", "/analytics/releases",
                                  "/analytics/releases/1.0", "/analytics/performance",
                                  "/analytics/satisfaction"])
@pytest.mark.parametrize("days", ["0", "366", "abc", "-3"])
def test_days_out_of_range_is_400(client: FlaskClient, feed: Feeder, path: str,
                                  days: str) -> None:
    project = feed.project()
    resp = client.get(f"/api/projects/{project.slug}{path}?days={days}",
                      headers=project.owner.headers)
    assert resp.status_code == 400, resp.json
    assert resp.json["ok"] is False and "days" in resp.json["details"]


def test_unknown_release_is_404(client: FlaskClient, world: Any) -> None:
    project, _, _ = world
    resp = client.get(f"/api/projects/{project.slug}/analytics/releases/9.9.9",
                      headers=project.owner.headers)
    assert resp.status_code == 404 and resp.json["ok"] is False


def test_who_may_see_analytics(client: FlaskClient, feed: Feeder) -> None:
    project = feed.project()
    stranger, viewer, tester = feed.user("stranger"), feed.user("viewer"), feed.user("tester")
    feed.member(project, viewer, "member")
    feed.member(project, tester, "member", permissions=["bugs.view"])
    for path in ("/analytics", "/analytics/crashes", "/analytics/releases",
                 "/analytics/performance", "/analytics/satisfaction", "/regressions"):
        url = f"/api/projects/{project.slug}{path}"
        assert client.get(url).status_code == 401
        assert client.get(url, headers=stranger.headers).status_code == 404
        assert client.get(url, headers=tester.headers).status_code == 403
        assert client.get(url, headers=viewer.headers).status_code == 200
    assert client.get("/api/projects/nope/analytics/crashes",
                      headers=viewer.headers).status_code == 404


CRASH_ROLLUP_CHECK = """
    WITH o AS (
        SELECT project_id, bug_id, '' AS version, occurred_at, player_key FROM bug_occurrences
        UNION ALL
        SELECT project_id, bug_id, game_version, occurred_at, player_key FROM bug_occurrences
        WHERE coalesce(game_version, '') <> ''),
    expected AS (
        SELECT project_id, bug_id, version, (occurred_at AT TIME ZONE 'UTC')::date AS day,
               count(*) AS n, max(occurred_at) AS last_at
        FROM o GROUP BY 1, 2, 3, 4),
    players AS (
        SELECT project_id, bug_id, version, player_key,
               max((occurred_at AT TIME ZONE 'UTC')::date) AS day
        FROM o WHERE player_key IS NOT NULL GROUP BY 1, 2, 3, 4),
    player_days AS (
        SELECT project_id, bug_id, version, day, count(*) AS n FROM players GROUP BY 1, 2, 3, 4)
    SELECT 'daily', count(*) FROM (
        (SELECT * FROM expected EXCEPT SELECT project_id, bug_id, version, day, occurrences,
                last_at FROM crash_daily)
        UNION ALL (SELECT project_id, bug_id, version, day, occurrences, last_at FROM crash_daily
                   EXCEPT SELECT * FROM expected)) x
    UNION ALL
    SELECT 'weekly', count(*) FROM (
        (SELECT project_id, bug_id, date_trunc('week', day)::date, sum(n), max(last_at)
         FROM expected WHERE version = '' GROUP BY 1, 2, 3
         EXCEPT SELECT project_id, bug_id, week, occurrences, last_at FROM crash_weekly)
        UNION ALL (SELECT project_id, bug_id, week, occurrences, last_at FROM crash_weekly
                   EXCEPT SELECT project_id, bug_id, date_trunc('week', day)::date, sum(n),
                          max(last_at) FROM expected WHERE version = '' GROUP BY 1, 2, 3)) w
    UNION ALL
    SELECT 'players', count(*) FROM (
        (SELECT * FROM players EXCEPT SELECT project_id, bug_id, version, player_key, last_day
         FROM crash_players)
        UNION ALL (SELECT project_id, bug_id, version, player_key, last_day FROM crash_players
                   EXCEPT SELECT * FROM players)) y
    UNION ALL
    SELECT 'player_days', count(*) FROM (
        (SELECT * FROM player_days EXCEPT SELECT project_id, bug_id, version, day, players
         FROM crash_player_days WHERE players <> 0)
        UNION ALL (SELECT project_id, bug_id, version, day, players FROM crash_player_days
                   WHERE players <> 0 EXCEPT SELECT * FROM player_days)) z"""


def crash_rollup_mismatches(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {name: n for name, n in conn.exec_driver_sql(CRASH_ROLLUP_CHECK).all() if n}


def test_crash_rollups_equal_the_reports_also_for_late_and_deleted_ones(
        client: FlaskClient, feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    bug = feed.bug(project, title="Crash", fingerprint="f-1", game_version="2.0",
                   created_at=(today() - timedelta(days=9)).isoformat() + "T10:00:00Z")
    other = feed.bug(project, title="Other crash", fingerprint="f-2", game_version="2.0")
    feed.occurred(project, bug, 2, game_version="2.1", player_key="steam:a")
    feed.occurred(project, other, 2, game_version="2.1", player_key="steam:a")
    # a late report from 8 days ago by the same player, and one by another player
    old = (today() - timedelta(days=8)).isoformat() + "T09:00:00Z"
    for key in ("steam:a", "steam:b"):
        feed.apply(subjects.BUG_OCCURRED, {"bug": bug, "occurrences": 3, "game_version": "2.0",
                                           "platform": "X11", "player_key": key}, time=old)
    assert crash_rollup_mismatches(analytics_db) == {}
    week = get(client, project, "/analytics/crashes", days=7)["data"]["top_signatures"]
    assert [(s["bug_id"], s["occurrences"], s["affected_players"]) for s in week] == [
        (other["id"], 2, 1), (bug["id"], 1, 1)]  # the older reports are outside 7 days
    month = get(client, project, "/analytics/crashes")["data"]["top_signatures"]
    first = month[0]
    assert (first["bug_id"], first["occurrences"], first["affected_players"],
            first["versions"]) == (bug["id"], 4, 2, ["2.0", "2.1"])
    feed.delete_bug(project, bug)
    assert crash_rollup_mismatches(analytics_db) == {}
    month = get(client, project, "/analytics/crashes")["data"]["top_signatures"]
    assert [s["bug_id"] for s in month] == [other["id"]]
    feed.delete_project(project)
    with analytics_db.engine.connect() as conn:
        left = conn.exec_driver_sql("SELECT (SELECT count(*) FROM crash_daily) + "
                                    "(SELECT count(*) FROM crash_weekly) + "
                                    "(SELECT count(*) FROM crash_player_days)").scalar()
    assert left == 0


def test_windows_of_every_length_count_the_same_reports_as_the_days(
        client: FlaskClient, feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    old = (today() - timedelta(days=40)).isoformat() + "T10:00:00Z"
    bug = feed.bug(project, fingerprint="f-days", game_version="3.0", created_at=old)
    days_ago = [d for d in range(20) for _ in range(1 + d % 3)]  # 1 to 3 reports a day
    for n, d in enumerate(days_ago):
        at = (today() - timedelta(days=d)).isoformat() + f"T{n % 24:02d}:00:00Z"
        feed.apply(subjects.BUG_OCCURRED, {"bug": bug, "occurrences": n + 2,
                                           "game_version": "3.0", "platform": "Web",
                                           "player_key": f"p{n % 5}"}, time=at)
    assert crash_rollup_mismatches(analytics_db) == {}
    for days in range(1, 23):
        top = get(client, project, "/analytics/crashes", days=days)["data"]["top_signatures"]
        expected = sum(1 for d in days_ago if d < days)
        assert top[0]["occurrences"] == expected, days
        detail = get(client, project, "/analytics/releases/3.0", days=days)["data"]
        assert detail["top_crashes"][0]["occurrences"] == expected, days
    assert get(client, project, "/analytics/crashes", days=60)["data"][
        "top_signatures"][0]["occurrences"] == len(days_ago) + 1  # and the first report
