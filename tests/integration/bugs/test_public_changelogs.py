"""Changelogs (managed by members with changelogs.manage, published on the tracker) and the
tracker's branding."""

from __future__ import annotations

import uuid

from integration.bugs.public_support import add_member, count, file_bug, set_tracker

from bugs.models import Branding, Changelog


def _post(client, slug, headers, **body):  # type: ignore[no-untyped-def]
    return client.post(f"/api/projects/{slug}/changelogs", json=body, headers=headers)


def test_changelog_entries_are_created_edited_and_deleted(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    created = project(owner)
    slug = created["slug"]
    fixed = file_bug(bugs_db, created, "Crash on load", status="resolved")
    resp = _post(client, slug, owner.headers, version="1.2.0", title="Winter patch",
                 body="Fixes", bug_ids=[fixed.id.upper(), fixed.id])
    assert resp.status_code == 201 and resp.json["ok"] is True
    entry = resp.json["data"]
    assert entry["version"] == "1.2.0" and entry["published"] is False
    assert entry["published_at"] is None and entry["bug_ids"] == [fixed.id]
    assert entry["bugs"] == [{"id": fixed.id, "number": fixed.number, "title": "Crash on load",
                              "status": "resolved", "is_public": True}]
    url = f"/api/projects/{slug}/changelogs/{entry['id']}"
    published = client.patch(url, json={"published": True}, headers=owner.headers).json["data"]
    assert published["published"] is True and published["published_at"] is not None
    assert published["title"] == "Winter patch" and published["bug_ids"] == [fixed.id]
    # Unpublishing and publishing again keeps the first publication time.
    client.patch(url, json={"published": False}, headers=owner.headers)
    again = client.put(url, json={"published": True, "title": "Winter patch 2", "bug_ids": []},
                       headers=owner.headers).json["data"]
    assert again["published_at"] == published["published_at"]
    assert again["title"] == "Winter patch 2" and again["bug_ids"] == [] and again["version"] == "1.2.0"
    assert client.get(url, headers=owner.headers).json["data"] == again
    deleted = client.delete(url, headers=owner.headers)
    assert deleted.status_code == 200 and deleted.json["ok"] is True
    assert deleted.json["data"]["id"] == entry["id"]
    assert client.get(url, headers=owner.headers).status_code == 404
    assert client.delete(url, headers=owner.headers).status_code == 404
    assert count(bugs_db, Changelog.__table__) == 0


def test_changelog_list_is_paginated_newest_first_with_drafts(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    slug = project(owner)["slug"]
    for n in range(3):
        assert _post(client, slug, owner.headers, version=f"1.{n}", title=f"Patch {n}",
                     published=n == 1).status_code == 201
    resp = client.get(f"/api/projects/{slug}/changelogs?limit=2", headers=owner.headers)
    assert resp.status_code == 200
    assert [e["version"] for e in resp.json["data"]] == ["1.2", "1.1"]
    assert resp.json["meta"] == {"page": 1, "limit": 2, "total": 3, "pages": 2}
    second = client.get(f"/api/projects/{slug}/changelogs?limit=2&page=2", headers=owner.headers)
    assert [e["version"] for e in second.json["data"]] == ["1.0"]


def test_changelog_refuses_a_bug_of_another_project_and_writes_nothing(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    mine, theirs = project(owner, name="Mine"), project(owner, name="Theirs")
    own_bug = file_bug(bugs_db, mine, "Mine")
    foreign = file_bug(bugs_db, theirs, "Theirs")
    resp = _post(client, mine["slug"], owner.headers, version="1.0", title="Patch",
                 bug_ids=[own_bug.id, foreign.id])
    assert resp.status_code == 400 and foreign.id in resp.json["error"]
    assert "bug_ids" in resp.json["details"]
    ghost = str(uuid.uuid4())
    assert ghost in _post(client, mine["slug"], owner.headers, version="1.0", title="Patch",
                          bug_ids=[ghost]).json["error"]
    malformed = _post(client, mine["slug"], owner.headers, version="1.0", title="Patch",
                      bug_ids=[own_bug.id, "nope"])
    assert malformed.status_code == 400 and "bug_ids.1" in malformed.json["details"]
    assert count(bugs_db, Changelog.__table__) == 0
    entry = _post(client, mine["slug"], owner.headers, version="1.0", title="Patch",
                  bug_ids=[own_bug.id]).json["data"]
    url = f"/api/projects/{mine['slug']}/changelogs/{entry['id']}"
    patched = client.patch(url, json={"bug_ids": [foreign.id], "title": "Changed"},
                           headers=owner.headers)
    assert patched.status_code == 400
    assert client.get(url, headers=owner.headers).json["data"] == entry  # unchanged


def test_changelog_bodies_are_validated(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    slug = project(owner)["slug"]
    for body, field in (({"title": "t"}, "version"), ({"version": "1"}, "title"),
                        ({"version": "x" * 51, "title": "t"}, "version"),
                        ({"version": "1", "title": "x" * 201}, "title"),
                        ({"version": "1", "title": "t", "body": "x" * 20_001}, "body"),
                        ({"version": "1", "title": "t", "published": "yes"}, "published"),
                        ({"version": "1", "title": "t", "bug_ids": "abc"}, "bug_ids"),
                        ({"version": " ", "title": "t"}, "version")):
        resp = _post(client, slug, owner.headers, **body)
        assert resp.status_code == 400 and field in resp.json["details"], body
    entry = _post(client, slug, owner.headers, version="1", title="t").json["data"]
    url = f"/api/projects/{slug}/changelogs/{entry['id']}"
    for body, field in (({"title": None}, "title"), ({"published": None}, "published"),
                        ({"version": ""}, "version")):
        resp = client.patch(url, json=body, headers=owner.headers)
        assert resp.status_code == 400 and field in resp.json["details"], body


def test_changelogs_need_changelogs_manage_and_ids_stay_in_their_project(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, member, stranger = user("Owner"), user("Member"), user("Stranger")
    mine, theirs = project(owner, name="Mine"), project(owner, name="Theirs")
    add_member(bugs_db, mine, member.id)
    base = f"/api/projects/{mine['slug']}/changelogs"
    assert client.get(base, headers=member.headers).status_code == 403
    assert _post(client, mine["slug"], member.headers, version="1", title="t").status_code == 403
    assert client.get(base, headers=stranger.headers).status_code == 404
    assert client.get(base).status_code == 401
    other = _post(client, theirs["slug"], owner.headers, version="1", title="t").json["data"]
    for bad in (other["id"], "nope", str(uuid.uuid4())):
        assert client.get(f"{base}/{bad}", headers=owner.headers).status_code == 404
        assert client.patch(f"{base}/{bad}", json={"title": "x"}, headers=owner.headers).status_code == 404
        assert client.delete(f"{base}/{bad}", headers=owner.headers).status_code == 404
    assert count(bugs_db, Changelog.__table__) == 1


def test_public_changelogs_show_published_entries_latest_first_with_public_bug_briefs(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    created = project(owner)
    slug = created["slug"]
    set_tracker(client, created, owner.headers, enabled=True)
    shown = file_bug(bugs_db, created, "Crash on load", status="resolved")
    private = file_bug(bugs_db, created, "Secret boss exploit", public=False, status="closed",
                       player_email="p@mail.example")
    first = _post(client, slug, owner.headers, version="1.0", title="First", published=True,
                  bug_ids=[shown.id, private.id]).json["data"]
    draft = _post(client, slug, owner.headers, version="1.1", title="Draft").json["data"]
    second = _post(client, slug, owner.headers, version="0.9", title="Late", published=True).json["data"]
    # Publishing the draft last makes it the latest published.
    client.patch(f"/api/projects/{slug}/changelogs/{draft['id']}", json={"published": True},
                 headers=owner.headers)
    resp = client.get(f"/api/projects/{slug}/public/changelogs")
    assert resp.status_code == 200 and resp.json["ok"] is True
    assert [e["id"] for e in resp.json["data"]] == [draft["id"], second["id"], first["id"]]
    assert resp.json["meta"] == {"page": 1, "limit": 20, "total": 3, "pages": 1}
    entry = resp.json["data"][2]
    assert set(entry) == {"id", "version", "title", "body", "bugs", "published_at"}
    assert entry["bugs"] == [
        {"id": shown.id, "number": shown.number, "title": "Crash on load", "status": "resolved"},
        {"number": private.number, "status": "closed"}]
    raw = resp.get_data(as_text=True)
    assert "Secret boss" not in raw and private.id not in raw and "p@mail.example" not in raw
    page = client.get(f"/api/projects/{slug}/public/changelogs?limit=1&page=3")
    assert [e["id"] for e in page.json["data"]] == [first["id"]]
    assert page.json["meta"] == {"page": 3, "limit": 1, "total": 3, "pages": 3}
    # Unpublished again: gone from the tracker.
    client.patch(f"/api/projects/{slug}/changelogs/{draft['id']}", json={"published": False},
                 headers=owner.headers)
    assert draft["id"] not in client.get(f"/api/projects/{slug}/public/changelogs").get_data(as_text=True)


def test_branding_is_set_partially_validated_and_public_while_the_tracker_is_on(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, member = user("Owner"), user("Member")
    created = project(owner, name="Space Game")
    add_member(bugs_db, created, member.id)
    url = f"/api/projects/{created['slug']}/branding"
    empty = {"name": "Space Game", "logo_url": None, "primary_color": None, "accent_color": None}
    assert client.get(url, headers=owner.headers).json["data"] == empty
    assert client.get(url, headers=member.headers).status_code == 403
    assert client.put(url, json={"primary_color": "#ff0000"}, headers=member.headers).status_code == 403
    resp = client.put(url, json={"logo_url": "https://cdn.example/logo.png",
                                 "primary_color": "#FF8800"}, headers=owner.headers)
    assert resp.status_code == 200
    assert resp.json["data"] == empty | {"logo_url": "https://cdn.example/logo.png",
                                         "primary_color": "#ff8800"}
    resp = client.patch(url, json={"accent_color": "#00aa11", "logo_url": None},
                        headers=owner.headers)
    assert resp.json["data"] == empty | {"primary_color": "#ff8800", "accent_color": "#00aa11"}
    for body, field in (({"logo_url": "javascript:alert(1)"}, "logo_url"),
                        ({"logo_url": "ftp://x.example/a.png"}, "logo_url"),
                        ({"logo_url": "https://x.example/" + "a" * 2048}, "logo_url"),
                        ({"primary_color": "red"}, "primary_color"),
                        ({"accent_color": "#12345"}, "accent_color"),
                        ({"accent_color": 123456}, "accent_color")):
        bad = client.put(url, json=body, headers=owner.headers)
        assert bad.status_code == 400 and field in bad.json["details"], body
    assert count(bugs_db, Branding.__table__) == 1
    public = f"/api/projects/{created['slug']}/public/branding"
    assert client.get(public).status_code == 404
    set_tracker(client, created, owner.headers, enabled=True)
    resp = client.get(public)
    assert resp.status_code == 200
    assert resp.json["data"] == empty | {"primary_color": "#ff8800", "accent_color": "#00aa11"}
