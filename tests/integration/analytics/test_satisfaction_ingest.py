"""POST /api/satisfaction: players rate fixed bugs, once per bug and player."""

from __future__ import annotations

import uuid
from typing import Any

from flask.testing import FlaskClient
from integration.analytics.support import Feeder, ProjectRef

from bugnet_common.db import Database


def rate(client: FlaskClient, project: ProjectRef, bug_id: str, rating: Any,
         headers: dict[str, str] | None = None, **fields: Any) -> Any:
    return client.post("/api/satisfaction", headers={**project.key_headers, **(headers or {})},
                       json={"bug_id": bug_id, "rating": rating, **fields})


def ratings(db: Database) -> list[tuple[Any, ...]]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(
            "SELECT bug_id, rater_key, rating, comment FROM satisfaction_ratings "
            "ORDER BY rater_key")]


def test_a_player_rates_a_resolved_bug(client: FlaskClient, feed: Feeder,
                                       analytics_db: Database) -> None:
    project = feed.project()
    bug = feed.bug(project, status="resolved")
    r = rate(client, project, bug["id"], 4, comment="Fixed, thanks!", steam_id="7656119")
    assert r.status_code == 201, r.json
    data = r.json["data"]
    assert (data["bug_id"], data["rating"], data["comment"], data["replaced"]) == (
        bug["id"], 4, "Fixed, thanks!", False)
    assert data["created_at"].endswith("Z")
    assert ratings(analytics_db) == [(bug["id"], "steam:7656119", 4, "Fixed, thanks!")]


def test_a_second_rating_by_the_same_player_replaces_the_first(
        client: FlaskClient, feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    bug = feed.bug(project, status="closed")
    first = rate(client, project, bug["id"], 2, steam_id="42").json["data"]
    second = rate(client, project, bug["id"], 5, steam_id="42", comment="better now")
    assert second.status_code == 201
    assert second.json["data"]["replaced"] is True
    assert second.json["data"]["id"] == first["id"]
    rate(client, project, bug["id"], 3, player_email="Ann@Example.com")
    rate(client, project, bug["id"], 1, player_email="ann@example.com")
    rows = ratings(analytics_db)
    assert [(r[2], r[3]) for r in rows] == [(1, None), (5, "better now")]
    assert rows[0][1].startswith("email:") and "ann" not in rows[0][1]


def test_without_an_identity_the_client_ip_is_the_player(client: FlaskClient, feed: Feeder,
                                                         analytics_db: Database) -> None:
    project = feed.project()
    bug = feed.bug(project, status="resolved")
    rate(client, project, bug["id"], 1, headers={"x-bugnet-client-ip": "203.0.113.7"})
    rate(client, project, bug["id"], 2, headers={"x-bugnet-client-ip": "203.0.113.7"})
    rate(client, project, bug["id"], 5, headers={"x-bugnet-client-ip": "198.51.100.1"})
    assert [(r[1], r[2]) for r in ratings(analytics_db)] == [
        ("ip:198.51.100.1", 5), ("ip:203.0.113.7", 2)]


def test_open_bugs_cannot_be_rated(client: FlaskClient, feed: Feeder,
                                   analytics_db: Database) -> None:
    project = feed.project()
    for status in ("open", "in_progress", "wont_fix"):
        bug = feed.bug(project, status=status)
        r = rate(client, project, bug["id"], 5)
        assert r.status_code == 409, (status, r.json)
    assert ratings(analytics_db) == []


def test_another_projects_bug_and_unknown_bugs_are_not_found(
        client: FlaskClient, feed: Feeder, analytics_db: Database) -> None:
    mine, theirs = feed.project(), feed.project()
    their_bug = feed.bug(theirs, status="resolved")
    assert rate(client, mine, their_bug["id"], 5).status_code == 404
    assert rate(client, mine, str(uuid.uuid4()), 5).status_code == 404
    assert ratings(analytics_db) == []


def test_ratings_out_of_range_and_bad_fields_are_400(client: FlaskClient, feed: Feeder,
                                                      analytics_db: Database) -> None:
    project = feed.project()
    bug = feed.bug(project, status="resolved")
    for rating in (0, 6, -1, 3.5, "5", None, True):
        r = rate(client, project, bug["id"], rating)
        assert r.status_code == 400, (rating, r.json)
        assert "rating" in r.json["details"]
    cases = [({"bug_id": "nope"}, "bug_id"), ({"comment": "c" * 2001}, "comment"),
             ({"steam_id": "9" * 31}, "steam_id"), ({"player_email": "not-an-email"},
                                                    "player_email")]
    for fields, field in cases:
        r = client.post("/api/satisfaction", headers=project.key_headers,
                        json={"bug_id": bug["id"], "rating": 4, **fields})
        assert r.status_code == 400 and field in r.json["details"], (fields, r.json)
    r = client.post("/api/satisfaction", headers=project.key_headers, json={"rating": 4})
    assert r.status_code == 400 and "bug_id" in r.json["details"]
    assert ratings(analytics_db) == []


def test_ratings_need_a_working_key(client: FlaskClient, feed: Feeder,
                                    analytics_db: Database) -> None:
    project = feed.project()
    bug = feed.bug(project, status="resolved")
    r = client.post("/api/satisfaction", json={"bug_id": bug["id"], "rating": 5})
    assert r.status_code == 401
    r = client.post("/api/satisfaction", json={"bug_id": bug["id"], "rating": 5},
                    headers={"X-API-Key": "sk_live_" + "q" * 43})
    assert r.status_code == 401
    assert ratings(analytics_db) == []
