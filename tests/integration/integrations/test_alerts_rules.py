"""Alert rules over HTTP: create, list, change, delete, firings; permissions and bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from integration.integrations.alerts_support import bug_created, evaluate_event
from integration.integrations.support import Project, User

from bugnet_common.db import Database
from integrations.settings import IntegrationsSettings


def url(p: Project, suffix: str = "") -> str:
    return f"/api/projects/{p.slug}/alerts{suffix}"


def create(client: FlaskClient, owner: User, p: Project, **body: Any) -> Any:
    body = {"name": "New bugs", "condition": "new_bug", **body}
    return client.post(url(p), json=body, headers=owner.headers)


@pytest.fixture()
def setup(user: Callable[..., User], project: Callable[..., Project]) -> tuple[User, Project]:
    owner = user("Owner")
    return owner, project(owner)


def test_owner_creates_an_alert_rule_and_reads_it_back(client: FlaskClient,
                                                       setup: tuple[User, Project]) -> None:
    owner, p = setup
    resp = create(client, owner, p, name="Critical crashes", threshold=2, window_minutes=30,
                  channels=["email", "in_app", "webhook", "email"],
                  filters={"priority": "critical", "category": ["crash"]})
    assert resp.status_code == 201, resp.json
    rule = resp.json["data"]
    assert rule["name"] == "Critical crashes" and rule["condition"] == "new_bug"
    assert rule["threshold"] == 2 and rule["window_minutes"] == 30 and rule["enabled"] is True
    assert rule["channels"] == ["email", "in_app", "webhook"]
    assert rule["filters"] == {"priority": ["critical"], "category": ["crash"]}
    assert rule["created_by"] == owner.id and rule["last_fired_at"] is None
    assert rule["created_at"].endswith("Z")

    got = client.get(url(p, f"/{rule['id']}"), headers=owner.headers)
    assert got.status_code == 200 and got.json["data"] == rule
    listed = client.get(url(p), headers=owner.headers)
    assert listed.json["data"] == [rule]
    assert listed.json["meta"] == {"page": 1, "limit": 20, "total": 1, "pages": 1}


def test_defaults_fill_what_the_condition_allows(client: FlaskClient,
                                                 setup: tuple[User, Project]) -> None:
    owner, p = setup
    rule = create(client, owner, p).json["data"]
    assert (rule["threshold"], rule["window_minutes"], rule["channels"], rule["filters"]) == (
        1, 60, ["in_app"], {})
    regression = create(client, owner, p, condition="regression_detected",
                        filters={"kind": "crash_rate"}).json["data"]
    assert regression["threshold"] is None and regression["filters"] == {"kind": ["crash_rate"]}
    rate = create(client, owner, p, condition="crash_free_below", threshold=99.5)
    assert rate.status_code == 201 and rate.json["data"]["threshold"] == 99.5


@pytest.mark.parametrize(("body", "field"), [
    ({"condition": "bugs_on_fire"}, "condition"),
    ({"name": ""}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"channels": ["email", "pager"]}, "channels.1"),
    ({"channels": []}, "channels"),
    ({"window_minutes": 0}, "window_minutes"),
    ({"window_minutes": 7 * 24 * 60 + 1}, "window_minutes"),
    ({"window_minutes": "60"}, "window_minutes"),
    ({"threshold": 0}, "threshold"),
    ({"threshold": 1.5}, "threshold"),
    ({"threshold": "3"}, "threshold"),
    ({"threshold": True}, "threshold"),
    ({"condition": "crash_free_below"}, "threshold"),
    ({"condition": "crash_free_below", "threshold": 0}, "threshold"),
    ({"condition": "crash_free_below", "threshold": 100.01}, "threshold"),
    ({"condition": "crash_spike", "threshold": 2_000_000}, "threshold"),
    ({"condition": "regression_detected", "threshold": 5}, "threshold"),
    ({"filters": {"priority": ["urgent"]}}, "filters.priority.0"),
    ({"filters": {"kind": "recurrence"}}, "filters.kind"),
    ({"condition": "crash_spike", "filters": {"category": "crash"}}, "filters.category"),
    ({"enabled": "yes"}, "enabled"),
])
def test_bad_rules_are_refused_naming_the_field(client: FlaskClient, setup: tuple[User, Project],
                                                body: dict[str, Any], field: str) -> None:
    owner, p = setup
    resp = create(client, owner, p, **body)
    assert resp.status_code == 400, resp.json
    assert resp.json["ok"] is False and resp.json["code"] == "validation_error"
    assert field in resp.json["details"], resp.json
    assert client.get(url(p), headers=owner.headers).json["meta"]["total"] == 0


def test_patch_changes_fields_and_keeps_the_rule_valid(client: FlaskClient,
                                                       setup: tuple[User, Project]) -> None:
    owner, p = setup
    rule = create(client, owner, p, threshold=3, filters={"priority": "high"}).json["data"]
    resp = client.patch(url(p, f"/{rule['id']}"), headers=owner.headers,
                        json={"name": "Renamed", "enabled": False, "channels": ["discord"]})
    assert resp.status_code == 200
    changed = resp.json["data"]
    assert (changed["name"], changed["enabled"], changed["channels"], changed["threshold"]) == (
        "Renamed", False, ["discord"], 3)
    # A new condition takes its own default threshold; filters it does not take are refused.
    bad = client.patch(url(p, f"/{rule['id']}"), headers=owner.headers,
                       json={"condition": "crash_spike"})
    assert bad.status_code == 400 and "filters.priority" in bad.json["details"]
    ok = client.patch(url(p, f"/{rule['id']}"), headers=owner.headers,
                      json={"condition": "crash_spike", "filters": None})
    assert ok.status_code == 200
    assert (ok.json["data"]["condition"], ok.json["data"]["threshold"],
            ok.json["data"]["filters"]) == ("crash_spike", 1, {})
    needs = client.patch(url(p, f"/{rule['id']}"), headers=owner.headers,
                         json={"condition": "crash_free_below"})
    assert needs.status_code == 400 and "threshold" in needs.json["details"]
    assert client.get(url(p, f"/{rule['id']}"),
                      headers=owner.headers).json["data"]["condition"] == "crash_spike"


def test_delete_answers_the_deleted_rule_and_then_404(client: FlaskClient,
                                                      setup: tuple[User, Project]) -> None:
    owner, p = setup
    rule = create(client, owner, p).json["data"]
    resp = client.delete(url(p, f"/{rule['id']}"), headers=owner.headers)
    assert resp.status_code == 200 and resp.json["data"]["id"] == rule["id"]
    for method in ("get", "patch", "delete"):
        again = getattr(client, method)(url(p, f"/{rule['id']}"), headers=owner.headers,
                                        json={} if method == "patch" else None)
        assert again.status_code == 404
    assert client.get(url(p, "/not-a-uuid"), headers=owner.headers).status_code == 404


def test_permissions_members_without_manage_get_403_strangers_404(
        client: FlaskClient, user: Callable[..., User], project: Callable[..., Project],
        member: Callable[..., None]) -> None:
    owner, dev, stranger = user("Owner"), user("Dev"), user("Stranger")
    p = project(owner)
    member(p, dev, "member")
    rule = create(client, owner, p).json["data"]
    assert create(client, dev, p).status_code == 403
    assert client.get(url(p), headers=dev.headers).status_code == 403
    assert client.delete(url(p, f"/{rule['id']}"), headers=dev.headers).status_code == 403
    assert client.get(url(p), headers=stranger.headers).status_code == 404
    assert client.get(url(p, f"/{rule['id']}/firings"),
                      headers=stranger.headers).status_code == 404
    assert client.get(url(p)).status_code == 401
    # Another project's rule is not found through this one.
    other = project(owner, name="Other")
    assert client.get(url(other, f"/{rule['id']}"), headers=owner.headers).status_code == 404


def test_list_is_paginated_newest_first(client: FlaskClient,
                                        setup: tuple[User, Project]) -> None:
    owner, p = setup
    ids = [create(client, owner, p, name=f"Rule {i}").json["data"]["id"] for i in range(5)]
    first = client.get(url(p) + "?limit=2", headers=owner.headers).json
    second = client.get(url(p) + "?limit=2&page=3", headers=owner.headers).json
    assert [r["id"] for r in first["data"]] == ids[::-1][:2]
    assert [r["id"] for r in second["data"]] == ids[:1]
    assert first["meta"] == {"page": 1, "limit": 2, "total": 5, "pages": 3}
    assert client.get(url(p) + "?limit=0", headers=owner.headers).status_code == 400


def test_firings_are_listed_newest_first(client: FlaskClient, setup: tuple[User, Project],
                                         integrations_db: Database,
                                         integrations_settings: IntegrationsSettings) -> None:
    owner, p = setup
    rule = create(client, owner, p, window_minutes=1).json["data"]
    first = evaluate_event(integrations_db, integrations_settings, bug_created(p, number=1))
    assert len(first) == 1
    resp = client.get(url(p, f"/{rule['id']}/firings"), headers=owner.headers)
    assert resp.status_code == 200 and resp.json["meta"]["total"] == 1
    (firing,) = resp.json["data"]
    assert firing["id"] == first[0] and firing["alert_id"] == rule["id"]
    assert firing["value"] == 1 and firing["threshold"] == 1 and firing["suppressed"] == 0
    assert firing["details"]["bug"]["number"] == 1 and firing["channels"] == ["in_app"]
    assert client.get(url(p, f"/{rule['id']}"),
                      headers=owner.headers).json["data"]["last_fired_at"] == firing["triggered_at"]
