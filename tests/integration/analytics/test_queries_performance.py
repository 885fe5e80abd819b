"""Performance by release and platform (nearest-rank percentiles), scene load times, a bug's
snapshots, and the satisfaction summary — exact figures on known rows."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient
from integration.analytics.queries_support import (
    insert_rating,
    insert_snapshots,
    noon,
    perf_rows,
    today,
)
from integration.analytics.support import Feeder, ProjectRef

from bugnet_common.db import Database


def get(client: FlaskClient, project: ProjectRef, path: str, **query: Any) -> Any:
    resp = client.get(f"/api/projects/{project.slug}{path}", query_string=query,
                      headers=project.owner.headers)
    assert resp.status_code == 200, resp.json
    return resp.json


def test_performance_by_release_and_platform_with_nearest_rank_percentiles(
        client: FlaskClient, feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    insert_snapshots(analytics_db, project, perf_rows())
    body = get(client, project, "/analytics/performance")["data"]
    assert [(v["version"], v["platform"], v["count"]) for v in body["versions"]] == [
        ("1.10.0", "Windows", 60), ("1.9.0", "Windows", 60), ("1.2.0", "Linux", 40),
        (None, "unknown", 1)]
    v19 = body["versions"][1]
    assert v19["frame_time_ms"] == {"avg": 30.5, "p50": 30.0, "p95": 57.0}
    assert v19["fps"] == {"avg": 169.5, "p50": 169.0, "p95": 196.0}
    assert v19["memory_used_mb"] == {"avg": 305.0, "p50": 300.0, "p95": 570.0}
    assert body["versions"][0]["frame_time_ms"] == {"avg": 40.5, "p50": 40.0, "p95": 67.0}
    assert body["versions"][2]["frame_time_ms"] == {"avg": 5.5, "p50": 5.5, "p95": 5.5}
    assert body["scenes"] == [
        {"scene": "forest", "count": 3, "avg_ms": 233.33, "p50_ms": 200.0, "p95_ms": 400.0},
        {"scene": "castle", "count": 1, "avg_ms": 50.0, "p50_ms": 50.0, "p95_ms": 50.0},
    ]
    wide = get(client, project, "/analytics/performance", days=60)["data"]
    assert wide["versions"][-2]["version"] == "0.9"


def test_a_bugs_snapshots_newest_first(client: FlaskClient, feed: Feeder,
                                       analytics_db: Database) -> None:
    project = feed.project()
    bug = feed.bug(project, title="Stutter", category="performance")
    insert_snapshots(analytics_db, project, perf_rows(bug_id=bug["id"]))
    body = get(client, project, f"/bugs/{bug['id']}/performance")
    assert body["meta"]["total"] == 2
    assert [s["frame_time_ms"] for s in body["data"]] == [70.0, 69.0]
    first = body["data"][0]
    assert first["bug_id"] == bug["id"] and first["game_version"] == "1.10.0"
    assert first["platform"] == "Windows" and first["created_at"].endswith("Z")
    quiet = feed.bug(project, title="No snapshots")
    assert get(client, project, f"/bugs/{quiet['id']}/performance")["data"] == []
    # a snapshot may name a bug analytics does not know yet
    early = str(uuid.uuid4())
    insert_snapshots(analytics_db, project, [{"frame_time_ms": 1.0, "fps": 1.0,
                                              "memory_used_mb": 1.0, "bug_id": early}])
    assert get(client, project, f"/bugs/{early}/performance")["meta"]["total"] == 1
    for unknown in (str(uuid.uuid4()), "not-a-uuid"):
        resp = client.get(f"/api/projects/{project.slug}/bugs/{unknown}/performance",
                          headers=project.owner.headers)
        assert resp.status_code == 404 and resp.json["ok"] is False
    designer = feed.user("designer")
    feed.member(project, designer, "member", permissions=["analytics.view"])
    resp = client.get(f"/api/projects/{project.slug}/bugs/{bug['id']}/performance",
                      headers=designer.headers)
    assert resp.status_code == 403
    other = feed.project()
    resp = client.get(f"/api/projects/{other.slug}/bugs/{bug['id']}/performance",
                      headers=other.owner.headers)
    assert resp.status_code == 404


def test_satisfaction_summary(client: FlaskClient, feed: Feeder,
                              analytics_db: Database) -> None:
    project = feed.project()
    bug = feed.bug(project, status="resolved")
    yesterday, three_ago = today() - timedelta(days=1), today() - timedelta(days=3)
    insert_rating(analytics_db, project, bug_id=bug["id"], rating=5, at=noon(yesterday, 30),
                  comment="Great fix")
    insert_rating(analytics_db, project, bug_id=bug["id"], rating=4, at=noon(yesterday, 20))
    insert_rating(analytics_db, project, bug_id=bug["id"], rating=4, at=noon(yesterday, 10),
                  comment="   ")
    insert_rating(analytics_db, project, bug_id=bug["id"], rating=2, at=noon(three_ago),
                  comment="Still crashes")
    insert_rating(analytics_db, project, bug_id=bug["id"], rating=1, at=noon(three_ago, 5))
    insert_rating(analytics_db, project, bug_id=bug["id"], rating=5,
                  at=noon(today() - timedelta(days=40)), comment="Old")
    body = get(client, project, "/analytics/satisfaction")["data"]
    assert body["average"] == 3.2 and body["count"] == 5
    assert body["distribution"] == {"1": 1, "2": 1, "3": 0, "4": 2, "5": 1}
    trend = {p["date"]: (p["average"], p["count"]) for p in body["trend"]}
    assert len(trend) == 30
    assert trend[yesterday.isoformat()] == (4.33, 3)
    assert trend[three_ago.isoformat()] == (1.5, 2)
    assert trend[today().isoformat()] == (None, 0)
    assert [(r["comment"], r["rating"]) for r in body["recent"]] == [
        ("Great fix", 5), ("Still crashes", 2)]
    assert body["recent"][0]["bug_id"] == bug["id"]
    empty = get(client, feed.project(), "/analytics/satisfaction")["data"]
    assert empty["average"] is None and empty["count"] == 0 and empty["recent"] == []
