"""Creating and listing projects (the part every other area builds on)."""

from __future__ import annotations

import json

import sqlalchemy as sa

from bugnet_common import apikeys
from bugnet_common.bus import subjects
from bugs.models import BUS, Project


def test_create_project_shows_the_key_once_and_stores_only_its_hash(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    created = project(owner, name="Space Game", description="A game", website="https://game.example")
    assert created["slug"] == "space-game" and created["role"] == "owner"
    assert apikeys.is_well_formed(created["api_key"])
    assert created["settings"] == {"screenshot_capture": True, "session_capture": False,
                                   "auto_file_errors": False, "public_tracker": False}
    with bugs_db.engine.connect() as conn:
        stored = conn.execute(sa.select(Project.api_key_hash)).scalar_one()  # type: ignore[call-overload]
        subjects_out = list(conn.execute(sa.select(BUS.outbox.c.subject).order_by(BUS.outbox.c.seq)).scalars())
        payload = json.loads(conn.execute(sa.select(BUS.outbox.c.payload).order_by(BUS.outbox.c.seq)).scalars().first())
    assert stored == apikeys.hash_api_key(created["api_key"]) and created["api_key"] not in stored
    assert subjects_out == [subjects.PROJECT_CREATED, subjects.MEMBER_ADDED]
    assert payload["data"]["api_key_hash"] == stored
    listed = client.get("/api/projects", headers=owner.headers).json["data"]
    assert [p["slug"] for p in listed] == ["space-game"] and "api_key" not in listed[0]


def test_slugs_are_derived_unique_and_validated(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    assert project(owner, name="Space Game!")["slug"] == "space-game"
    assert project(owner, name="Space  game")["slug"] == "space-game-2"
    taken = client.post("/api/projects", json={"name": "X", "slug": "space-game"}, headers=owner.headers)
    assert taken.status_code == 409
    for bad in ("ab", "UPPER", "has space", "x" * 65):
        resp = client.post("/api/projects", json={"name": "X", "slug": bad}, headers=owner.headers)
        assert resp.status_code == 400 and "slug" in resp.json["details"], bad


def test_non_member_gets_404_not_403(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner, stranger = user("Owner"), user("Stranger")
    slug = project(owner)["slug"]
    assert client.get(f"/api/projects/{slug}", headers=owner.headers).status_code == 200
    assert client.get(f"/api/projects/{slug}", headers=stranger.headers).status_code == 404
    assert client.get("/api/projects/no-such-project", headers=owner.headers).status_code == 404
    assert client.get(f"/api/projects/{slug}").status_code == 401
