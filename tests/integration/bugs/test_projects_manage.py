"""Listing, updating and deleting projects; showing and regenerating API keys."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from integration.bugs.team_support import join, outbox

from bugnet_common import apikeys, errors
from bugnet_common.bus import subjects
from bugs.access import project_for_api_key
from bugs.models import Attachment, Bug, Label, Project, Tracker
from bugs.sdk.storage import MissingObject, storage_from_settings


def test_project_list_is_paginated_newest_first_with_the_callers_role(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner, other = user("Owner"), user("Other")
    for i in range(3):
        project(owner, name=f"Game {i}")
    theirs = project(other, name="Their Game")
    join(client, other, theirs["slug"], owner, "admin")
    first = client.get("/api/projects?limit=3", headers=owner.headers)
    assert first.status_code == 200 and first.json["ok"] is True
    assert first.json["meta"] == {"page": 1, "limit": 3, "total": 4, "pages": 2}
    assert [p["slug"] for p in first.json["data"]] == ["their-game", "game-2", "game-1"]
    assert [p["role"] for p in first.json["data"]] == ["admin", "owner", "owner"]
    second = client.get("/api/projects?limit=3&page=2", headers=owner.headers).json
    assert [p["slug"] for p in second["data"]] == ["game-0"]
    assert client.get("/api/projects?limit=101", headers=owner.headers).status_code == 400
    assert client.get("/api/projects?page=x", headers=owner.headers).status_code == 400


def test_owner_updates_name_description_website_and_settings(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    slug = project(owner, name="Space Game", website="https://old.example")["slug"]
    resp = client.patch(f"/api/projects/{slug}", headers=owner.headers, json={
        "name": "  Space Game 2 ", "description": "Now with lasers", "website": None,
        "settings": {"public_tracker": True, "session_capture": True}})
    assert resp.status_code == 200, resp.json
    data = resp.json["data"]
    assert data["name"] == "Space Game 2" and data["slug"] == slug and data["role"] == "owner"
    assert data["description"] == "Now with lasers" and data["website"] is None
    assert data["settings"] == {"screenshot_capture": True, "session_capture": True,
                                "auto_file_errors": False, "public_tracker": True}
    assert client.get(f"/api/projects/{slug}", headers=owner.headers).json["data"] == data
    with bugs_db.session() as session:  # the public pages' switch follows the setting
        tracker = session.get(Tracker, data["id"])
        assert tracker is not None and tracker.enabled is True
    (event,) = outbox(bugs_db, subjects.PROJECT_UPDATED)
    assert event["changes"] == ["name", "description", "website", "settings"]
    assert event["owner_id"] == owner.id and event["settings"]["public_tracker"] is True
    # PUT is the same update; unchanged values emit nothing.
    same = client.put(f"/api/projects/{slug}", json={"name": "Space Game 2", "slug": slug},
                      headers=owner.headers)
    assert same.status_code == 200 and len(outbox(bugs_db, subjects.PROJECT_UPDATED)) == 1


def test_project_update_refuses_bad_input_and_changes_nothing(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    slug = project(owner)["slug"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"settings": {"public_tracker": True, "dark_mode": True}}, "settings.dark_mode"),
        ({"settings": {"public_tracker": "yes"}}, "settings.public_tracker"),
        ({"settings": None}, "settings"),
        ({"settings": ["public_tracker"]}, "settings"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"website": "ftp://nope"}, "website"),
        ({"description": 5}, "description"),
        ({"slug": "another-slug", "name": "Renamed"}, "slug"),
    ]
    for body, field in cases:
        resp = client.patch(f"/api/projects/{slug}", json=body, headers=owner.headers)
        assert resp.status_code == 400, (body, resp.json)
        assert resp.json["ok"] is False and field in resp.json["details"], (body, resp.json)
    assert client.patch(f"/api/projects/{slug}", data="{", content_type="application/json",
                        headers=owner.headers).status_code == 400
    assert client.patch(f"/api/projects/{slug}", data="name=x", headers=owner.headers,
                        content_type="text/plain").status_code == 415
    stored = client.get(f"/api/projects/{slug}", headers=owner.headers).json["data"]
    assert stored["name"] == "Space Game" and stored["settings"]["public_tracker"] is False
    assert outbox(bugs_db, subjects.PROJECT_UPDATED) == []


def test_updating_needs_settings_manage_and_non_members_get_404(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner, admin, member, stranger = user("Owner"), user("Admin"), user("Member"), user("Stranger")
    slug = project(owner)["slug"]
    join(client, owner, slug, admin, "admin")
    join(client, owner, slug, member)
    body = {"name": "Renamed"}
    assert client.patch(f"/api/projects/{slug}", json=body, headers=stranger.headers).status_code == 404
    denied = client.patch(f"/api/projects/{slug}", json=body, headers=member.headers)
    assert denied.status_code == 403 and "settings.manage" in denied.json["error"]
    assert client.patch(f"/api/projects/{slug}", json=body, headers=admin.headers).status_code == 200
    assert client.patch(f"/api/projects/{slug}", json=body).status_code == 401


def test_only_the_owner_deletes_and_everything_under_the_project_goes(client, user, project, bugs_db, bugs_settings) -> None:  # type: ignore[no-untyped-def]
    owner, admin = user("Owner"), user("Admin")
    created = project(owner)
    slug = created["slug"]
    join(client, owner, slug, admin, "admin")
    kept = project(owner, name="Other Game")
    store = storage_from_settings(bugs_settings)
    key = f"{created['id']}/{uuid.uuid4()}.png"
    store.put(key, b"\x89PNG", "image/png")
    with bugs_db.begin() as session:
        session.add(Bug(id="00000000-0000-4000-8000-000000000001", project_id=created["id"],
                        number=1, title="Falls through floor"))
        session.add(Label(id="00000000-0000-4000-8000-000000000002", project_id=created["id"],
                          name="ui", color="#ff0000"))
        session.add(Attachment(id=str(uuid.uuid4()), project_id=created["id"], kind="screenshot",
                               content_type="image/png", size=4, storage_key=key))
    assert client.delete(f"/api/projects/{slug}", headers=admin.headers).status_code == 403
    resp = client.delete(f"/api/projects/{slug}", headers=owner.headers)
    assert resp.status_code == 200 and resp.json["ok"] is True
    assert resp.json["data"]["slug"] == slug
    assert client.get(f"/api/projects/{slug}", headers=owner.headers).status_code == 404
    assert client.delete(f"/api/projects/{slug}", headers=owner.headers).status_code == 404
    with bugs_db.engine.connect() as conn:
        left = {table: conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE project_id = :p"),
                                    {"p": created["id"]}).scalar_one()
                for table in ("members", "invitations", "bugs", "labels", "trackers",
                              "attachments")}
        projects = conn.execute(sa.text("SELECT count(*) FROM projects")).scalar_one()
    assert set(left.values()) == {0} and projects == 1, left
    with pytest.raises(MissingObject):  # the screenshot's bytes went with it
        store.get(key)
    assert [p["slug"] for p in client.get("/api/projects", headers=owner.headers).json["data"]] \
        == [kept["slug"]]
    (event,) = outbox(bugs_db, subjects.PROJECT_DELETED)
    assert event == {"project_id": created["id"], "slug": slug,
                     "_subject": subjects.PROJECT_DELETED}


def test_api_key_is_shown_masked_and_only_to_api_key_managers(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner, admin, member = user("Owner"), user("Admin"), user("Member")
    created = project(owner)
    slug = created["slug"]
    join(client, owner, slug, admin, "admin")
    join(client, owner, slug, member)
    for who in (owner, admin):
        resp = client.get(f"/api/projects/{slug}/api-key", headers=who.headers)
        assert resp.status_code == 200
        assert resp.json["data"] == {"api_key": "sk_live_…" + created["api_key"][-4:]}
    assert client.get(f"/api/projects/{slug}/api-key", headers=member.headers).status_code == 403
    assert client.post(f"/api/projects/{slug}/api-key/regenerate",
                       headers=member.headers).status_code == 403


def test_regenerating_the_key_kills_the_old_one_at_once(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    created = project(owner)
    slug, old = created["slug"], created["api_key"]
    # An empty body, without and with a JSON Content-Type, is what clients send.
    first = client.post(f"/api/projects/{slug}/api-key/regenerate", headers=owner.headers)
    second = client.post(f"/api/projects/{slug}/api-key/regenerate", headers=owner.headers,
                         data="", content_type="application/json")
    assert first.status_code == 200 and second.status_code == 200
    middle, new = first.json["data"]["api_key"], second.json["data"]["api_key"]
    assert apikeys.is_well_formed(new) and len({old, middle, new}) == 3
    with bugs_db.session() as session:
        assert project_for_api_key(session, new).id == created["id"]
        for dead in (old, middle):
            try:
                project_for_api_key(session, dead)
            except errors.Unauthorized:
                continue
            raise AssertionError("a replaced key still works")
        stored = session.get(Project, created["id"])
        assert stored is not None and stored.api_key_hash == apikeys.hash_api_key(new)
    masked = client.get(f"/api/projects/{slug}/api-key", headers=owner.headers).json["data"]
    assert masked["api_key"].endswith(new[-4:]) and new not in json.dumps(masked)
    rotations = outbox(bugs_db, subjects.API_KEY_ROTATED)
    assert [(r["previous_hash"], r["api_key_hash"]) for r in rotations] == [
        (apikeys.hash_api_key(old), apikeys.hash_api_key(middle)),
        (apikeys.hash_api_key(middle), apikeys.hash_api_key(new))]
    assert all(r["project_id"] == created["id"] for r in rotations)
