"""Tracker settings, and the rule every public route shares: a disabled tracker answers exactly
like a project that does not exist; a bearer is optional but must be valid when sent."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from integration.bugs.public_support import add_member, count, file_bug, outbox, set_tracker

from bugnet_common.bus import subjects
from bugs.models import Bug, Tracker

DEFAULTS = {"enabled": False, "allow_search": True, "allow_voting": True,
            "allow_submissions": False, "show_categories": True, "title": None,
            "description": None}


def _settings(data: dict) -> dict:  # type: ignore[type-arg]
    return {k: v for k, v in data.items() if k != "updated_at"}


def test_tracker_settings_start_disabled_and_need_settings_manage(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, member, stranger = user("Owner"), user("Member"), user("Stranger")
    created = project(owner)
    add_member(bugs_db, created, member.id)
    url = f"/api/projects/{created['slug']}/tracker"
    resp = client.get(url, headers=owner.headers)
    assert resp.status_code == 200 and resp.json["ok"] is True
    assert _settings(resp.json["data"]) == DEFAULTS
    assert client.get(url, headers=member.headers).status_code == 403
    assert client.put(url, json={"enabled": True}, headers=member.headers).status_code == 403
    assert client.get(url, headers=stranger.headers).status_code == 404
    assert client.get(url).status_code == 401
    assert client.get("/api/projects/no-such-project/tracker", headers=owner.headers).status_code == 404


def test_partial_put_keeps_unnamed_fields_and_mirrors_enabled_into_project_settings(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    created = project(owner)
    slug = created["slug"]
    data = set_tracker(client, created, owner.headers, enabled=True, title="Space Game bugs",
                       allow_voting=False)
    assert _settings(data) == DEFAULTS | {"enabled": True, "title": "Space Game bugs",
                                          "allow_voting": False}
    assert client.get(f"/api/projects/{slug}", headers=owner.headers).json["data"]["settings"]["public_tracker"] is True
    # PATCH is the same partial update; a field left out keeps its value.
    resp = client.patch(f"/api/projects/{slug}/tracker", json={"description": "Report here"},
                        headers=owner.headers)
    assert resp.status_code == 200
    assert _settings(resp.json["data"]) == DEFAULTS | {
        "enabled": True, "title": "Space Game bugs", "allow_voting": False,
        "description": "Report here"}
    # null (or "") clears the optional texts.
    data = set_tracker(client, created, owner.headers, title=None, description="")
    assert data["title"] is None and data["description"] is None and data["enabled"] is True
    set_tracker(client, created, owner.headers, enabled=False)
    assert client.get(f"/api/projects/{slug}", headers=owner.headers).json["data"]["settings"]["public_tracker"] is False
    updates = [d for s, d in outbox(bugs_db) if s == subjects.PROJECT_UPDATED]
    assert [u["settings"]["public_tracker"] for u in updates] == [True, False]
    assert all(u["changes"] == ["settings"] and u["owner_id"] == owner.id for u in updates)


def test_tracker_put_refuses_wrong_types_nulls_and_long_texts_and_changes_nothing(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    created = project(owner)
    url = f"/api/projects/{created['slug']}/tracker"
    for body, field in (({"enabled": "yes"}, "enabled"), ({"allow_voting": 1}, "allow_voting"),
                        ({"enabled": None}, "enabled"), ({"title": "x" * 201}, "title"),
                        ({"description": "x" * 5001}, "description"), ({"title": 5}, "title"),
                        ({"enabled": True, "show_categories": "no"}, "show_categories")):
        resp = client.put(url, json=body, headers=owner.headers)
        assert resp.status_code == 400, body
        assert resp.json["ok"] is False and field in resp.json["details"] and field in resp.json["error"]
    assert client.put(url, data="[1]", content_type="application/json", headers=owner.headers).status_code == 400
    assert client.put(url, data="nope", content_type="application/json", headers=owner.headers).status_code == 400
    assert _settings(client.get(url, headers=owner.headers).json["data"]) == DEFAULTS
    assert not [s for s, _ in outbox(bugs_db) if s == subjects.PROJECT_UPDATED]


def _public_calls(slug: str, bug_id: str) -> list[tuple[str, str, dict | None]]:  # type: ignore[type-arg]
    base = f"/api/projects/{slug}/public"
    return [("GET", f"{base}/tracker", None), ("GET", f"{base}/bugs", None),
            ("GET", f"{base}/bugs?search=crash&status=open", None),
            ("GET", f"{base}/bugs/{bug_id}", None), ("POST", f"{base}/bugs/{bug_id}/vote", None),
            ("POST", f"{base}/bugs", {"title": "Crash", "description": "It crashed"}),
            ("POST", f"{base}/bugs", {"title": 5}),  # a bad body too: the 404 comes first
            ("GET", f"{base}/changelogs", None), ("GET", f"{base}/branding", None)]


def test_disabled_tracker_answers_every_public_route_like_a_missing_project(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    created = project(owner)
    set_tracker(client, created, owner.headers, allow_submissions=True)  # but not enabled
    bug = file_bug(bugs_db, created, "Crash on start", public=True)
    missing_bug = str(uuid.uuid4())
    for (method, url, body), (_, missing_url, _) in zip(
            _public_calls(created["slug"], bug.id), _public_calls("no-such-project", missing_bug),
            strict=True):
        resp = client.open(url, method=method, json=body)
        missing = client.open(missing_url, method=method, json=body)
        assert resp.status_code == 404, url
        assert resp.json == missing.json == {"ok": False, "error": "Project not found",
                                             "code": "not_found"}, url
    assert count(bugs_db, Bug.__table__) == 1  # the submission wrote nothing
    # Switched on, the same calls answer.
    set_tracker(client, created, owner.headers, enabled=True)
    assert client.get(f"/api/projects/{created['slug']}/public/bugs/{bug.id}").status_code == 200


def test_public_routes_need_no_bearer_but_refuse_an_invalid_one(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner, player = user("Owner"), user("Player")
    created = project(owner)
    set_tracker(client, created, owner.headers, enabled=True)
    url = f"/api/projects/{created['slug']}/public/bugs"
    assert client.get(url).status_code == 200
    assert client.get(url, headers=player.headers).status_code == 200  # not a member: fine
    bad = client.get(url, headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401 and bad.json["ok"] is False
    # Also on a missing project: a bad token is refused before anything is looked up.
    assert client.get("/api/projects/no-such-project/public/bugs",
                      headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def test_public_tracker_describes_the_page_without_internal_settings(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    created = project(owner, name="Space Game")
    set_tracker(client, created, owner.headers, enabled=True, title="Known issues",
                description="What we are fixing", allow_search=False)
    resp = client.get(f"/api/projects/{created['slug']}/public/tracker")
    assert resp.status_code == 200
    assert resp.json["data"] == {
        "name": "Space Game", "slug": created["slug"], "title": "Known issues",
        "description": "What we are fixing", "allow_search": False, "allow_voting": True,
        "allow_submissions": False, "show_categories": True}


def test_every_project_has_its_tracker_row_and_a_lost_one_reads_as_the_defaults(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    created = project(owner, name="One")
    project(owner, name="Two")
    assert count(bugs_db, Tracker.__table__) == 2
    with bugs_db.begin() as session:
        session.execute(sa.delete(Tracker).where(Tracker.project_id == created["id"]))  # type: ignore[arg-type]
    assert client.get(f"/api/projects/{created['slug']}/public/tracker").status_code == 404
    url = f"/api/projects/{created['slug']}/tracker"
    assert _settings(client.get(url, headers=owner.headers).json["data"]) == DEFAULTS
    assert set_tracker(client, created, owner.headers, enabled=True)["enabled"] is True
    assert client.get(f"/api/projects/{created['slug']}/public/tracker").status_code == 200
    assert count(bugs_db, Tracker.__table__) == 2
