"""Bugs from the dashboard: create, read with everything on them, change, delete."""

from __future__ import annotations

import uuid

from integration.bugs.reports_support import add_member, events, file_bug, outbox, patch_bug, scalar

from bugnet_common.bus import subjects
from bugs.models import Attachment


def test_member_files_a_bug_with_the_dashboard_fields(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    proj = project(owner)
    resp = client.post(f"/api/projects/{proj['slug']}/bugs", headers=owner.headers, json={
        "title": "  Player falls through floor  ", "description": "On the bridge",
        "category": "gameplay", "priority": "high", "steps": "1. walk", "expected": "stand",
        "actual": "fall", "platform": "Windows", "game_version": "1.2.0",
        "player_email": "p@example.com", "unknown_field": 1})
    assert resp.status_code == 201 and resp.json["ok"] is True
    bug = resp.json["data"]
    assert bug["number"] == 1 and bug["title"] == "Player falls through floor"
    assert (bug["category"], bug["priority"], bug["status"], bug["source"]) == (
        "gameplay", "high", "open", "dashboard")
    assert bug["reporter"]["id"] == owner.id and bug["player_email"] == "p@example.com"
    assert file_bug(client, proj, owner, "Second")["number"] == 2
    created = events(bugs_db, subjects.BUG_CREATED)
    assert [e["bug"]["number"] for e in created] == [1, 2]
    assert created[0]["bug"]["url"] == f"/api/projects/{proj['slug']}/bugs/{bug['id']}"


def test_creating_a_bug_refuses_bad_input_naming_the_field(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    slug = project(owner)["slug"]
    for body, field in (({"title": ""}, "title"), ({"title": "x" * 301}, "title"),
                        ({"title": "x", "priority": "urgent"}, "priority"),
                        ({"title": "x", "category": "bug"}, "category"),
                        ({"title": 5}, "title"), ({"title": "x", "platform": "p" * 51}, "platform"),
                        ({"title": "x", "player_email": "nope"}, "player_email")):
        resp = client.post(f"/api/projects/{slug}/bugs", json=body, headers=owner.headers)
        assert resp.status_code == 400 and field in resp.json["details"], (body, resp.json)
    assert scalar(bugs_db, "SELECT count(*) FROM bugs") == 0


def test_bug_detail_has_comments_labels_activity_and_attachments(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    proj = project(owner)
    slug = proj["slug"]
    bug = file_bug(client, proj, owner, "Crash on boot")
    client.post(f"/api/projects/{slug}/bugs/{bug['id']}/comments", headers=owner.headers,
                json={"body": "Secret repro", "internal": True})
    label = client.post(f"/api/projects/{slug}/labels", headers=owner.headers,
                        json={"name": "crash", "color": "#FF0000"}).json["data"]
    client.post(f"/api/projects/{slug}/bugs/{bug['id']}/labels", headers=owner.headers,
                json={"label_id": label["id"]})
    attachment_id = str(uuid.uuid4())
    with bugs_db.begin() as session:
        session.add(Attachment(id=attachment_id, project_id=proj["id"], bug_id=bug["id"],
                               kind="screenshot", content_type="image/png", size=42,
                               storage_key="k", filename="shot.png"))
    resp = client.get(f"/api/projects/{slug}/bugs/{bug['id']}", headers=owner.headers)
    assert resp.status_code == 200
    detail = resp.json["data"]
    assert [c["body"] for c in detail["comments"]] == ["Secret repro"]
    assert detail["comments"][0]["internal"] is True
    assert detail["comments"][0]["author"]["display_name"] == "Owner"
    assert detail["labels"] == [{"id": label["id"], "name": "crash", "color": "#ff0000"}]
    assert [a["action"] for a in detail["activity"]] == ["changed", "commented", "created"]
    assert detail["attachments"] == [{
        "id": attachment_id, "kind": "screenshot", "content_type": "image/png", "size": 42,
        "filename": "shot.png", "duration_sec": None,
        "created_at": detail["attachments"][0]["created_at"],
        "url": f"/api/projects/{slug}/bugs/{bug['id']}/attachments/{attachment_id}"}]


def test_bug_ids_that_are_malformed_or_of_another_project_are_404(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    mine, theirs = project(owner, name="Mine"), project(owner, name="Theirs")
    foreign = file_bug(client, theirs, owner, "Elsewhere")
    for bug_id in ("not-a-uuid", str(uuid.uuid4()), foreign["id"]):
        base = f"/api/projects/{mine['slug']}/bugs/{bug_id}"
        assert client.get(base, headers=owner.headers).status_code == 404
        assert client.patch(base, json={"title": "x"}, headers=owner.headers).status_code == 404
        assert client.delete(base, headers=owner.headers).status_code == 404
        assert client.post(f"{base}/comments", json={"body": "x"},
                           headers=owner.headers).status_code == 404
        assert client.get(f"{base}/activity", headers=owner.headers).status_code == 404


def test_non_member_gets_404_and_member_without_permission_403(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, stranger, viewer = user("Owner"), user("Stranger"), user("Viewer")
    proj = project(owner)
    add_member(bugs_db, proj, viewer, bugs_create=False, bugs_edit=False)
    bug = file_bug(client, proj, owner, "A bug")
    base = f"/api/projects/{proj['slug']}/bugs"
    assert client.get(base, headers=stranger.headers).status_code == 404
    assert client.get(f"{base}/{bug['id']}", headers=stranger.headers).status_code == 404
    assert client.get(base, headers=viewer.headers).status_code == 200
    assert client.post(base, json={"title": "x"}, headers=viewer.headers).status_code == 403
    assert patch_bug(client, proj, viewer, bug, title="y").status_code == 403
    assert client.delete(f"{base}/{bug['id']}", headers=viewer.headers).status_code == 403
    assert client.get(base).status_code == 401


def test_update_records_one_activity_row_per_changed_field_and_emits_the_changes(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    proj = project(owner)
    bug = file_bug(client, proj, owner, "Old title", priority="low")
    resp = patch_bug(client, proj, owner, bug, title="New title", priority="low",
                     category="audio", is_public=True, description="Details")
    assert resp.status_code == 200
    assert (resp.json["data"]["title"], resp.json["data"]["category"]) == ("New title", "audio")
    activity = client.get(f"/api/projects/{proj['slug']}/bugs/{bug['id']}/activity",
                          headers=owner.headers).json
    changed = {a["field"]: (a["from"], a["to"]) for a in activity["data"] if a["action"] == "changed"}
    assert changed == {"title": ("Old title", "New title"), "category": ("other", "audio"),
                       "is_public": ("false", "true"), "description": ("", "Details")}
    assert activity["meta"]["total"] == 5
    assert all(a["actor"]["id"] == owner.id for a in activity["data"])
    [updated] = events(bugs_db, subjects.BUG_UPDATED)
    assert updated["changes"] == {"title": {"from": "Old title", "to": "New title"},
                                  "category": {"from": "other", "to": "audio"},
                                  "is_public": {"from": False, "to": True},
                                  "description": {"from": "", "to": "Details"}}
    assert updated["actor_id"] == owner.id
    assert scalar(bugs_db, "SELECT search_text FROM bugs") == "New title\nDetails"
    # Nothing changed: no activity, no event.
    assert patch_bug(client, proj, owner, bug, title="New title").status_code == 200
    assert len(events(bugs_db, subjects.BUG_UPDATED)) == 1


def test_put_is_the_same_as_patch_and_bad_values_change_nothing(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    proj = project(owner)
    bug = file_bug(client, proj, owner, "Title")
    url = f"/api/projects/{proj['slug']}/bugs/{bug['id']}"
    assert client.put(url, json={"status": "in_progress"}, headers=owner.headers).json["data"][
        "status"] == "in_progress"
    for body, field in (({"status": "done"}, "status"), ({"title": "t", "priority": "p0"}, "priority"),
                        ({"is_public": "yes"}, "is_public"), ({"assignee": "bob"}, "assignee"),
                        ({"title": ""}, "title")):
        resp = client.patch(url, json=body, headers=owner.headers)
        assert resp.status_code == 400 and field in resp.json["details"], body
    assert scalar(bugs_db, "SELECT title FROM bugs") == "Title"


def test_resolving_stamps_resolved_at_and_version_and_reopening_clears_them(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    proj = project(owner)
    bug = file_bug(client, proj, owner, "Crash", game_version="1.4.0")
    resolved = patch_bug(client, proj, owner, bug, status="resolved").json["data"]
    assert resolved["resolved_at"] is not None
    assert scalar(bugs_db, "SELECT resolved_in_version FROM bugs") == "1.4.0"
    [event] = events(bugs_db, subjects.BUG_RESOLVED)
    assert event["bug"]["status"] == "resolved" and event["bug"]["resolved_at"]
    assert event["changes"]["status"] == {"from": "open", "to": "resolved"}
    # resolved -> closed is still fixed: no second bug_resolved, resolved_at kept.
    closed = patch_bug(client, proj, owner, bug, status="closed").json["data"]
    assert closed["resolved_at"] == resolved["resolved_at"]
    assert len(events(bugs_db, subjects.BUG_RESOLVED)) == 1
    reopened = patch_bug(client, proj, owner, bug, status="open").json["data"]
    assert reopened["resolved_at"] is None
    assert scalar(bugs_db, "SELECT resolved_in_version FROM bugs") is None


def test_changing_the_assignee_needs_bugs_assign_and_a_member(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, dev, editor, outsider = user("Owner"), user("Dev"), user("Editor"), user("Outsider")
    proj = project(owner)
    add_member(bugs_db, proj, dev)
    add_member(bugs_db, proj, editor, bugs_assign=False)
    bug = file_bug(client, proj, owner, "Needs an owner")
    assert patch_bug(client, proj, editor, bug, assignee=dev.id).status_code == 403
    # The editor may still send the unchanged assignee with other fields (a full PUT).
    assert patch_bug(client, proj, editor, bug, assignee=None, title="Renamed").status_code == 200
    resp = patch_bug(client, proj, owner, bug, assignee=outsider.id)
    assert resp.status_code == 400 and "assignee" in resp.json["details"]
    resp = patch_bug(client, proj, owner, bug, assignee=dev.id.upper())
    assert resp.status_code == 200 and resp.json["data"]["assignee"]["id"] == dev.id
    assert resp.json["data"]["assignee"]["display_name"] == "Dev"
    unassigned = patch_bug(client, proj, owner, bug, assignee=None).json["data"]
    assert unassigned["assignee"] is None
    changes = [e["changes"] for e in events(bugs_db, subjects.BUG_UPDATED)]
    assert changes[-2:] == [{"assignee": {"from": None, "to": dev.id}},
                            {"assignee": {"from": dev.id, "to": None}}]


def test_delete_removes_the_bug_and_everything_on_it(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    proj = project(owner)
    bug = file_bug(client, proj, owner, "Gone soon")
    keep = file_bug(client, proj, owner, "Stays")
    client.post(f"/api/projects/{proj['slug']}/bugs/{bug['id']}/comments", json={"body": "hi"},
                headers=owner.headers)
    resp = client.delete(f"/api/projects/{proj['slug']}/bugs/{bug['id']}", headers=owner.headers)
    assert resp.status_code == 200 and resp.json["ok"] is True
    assert resp.json["data"]["id"] == bug["id"]
    assert client.get(f"/api/projects/{proj['slug']}/bugs/{bug['id']}",
                      headers=owner.headers).status_code == 404
    assert scalar(bugs_db, "SELECT count(*) FROM comments") == 0
    assert scalar(bugs_db, "SELECT count(*) FROM activity WHERE bug_id = :b", b=bug["id"]) == 0
    [deleted] = events(bugs_db, subjects.BUG_DELETED)
    assert deleted["bug"]["id"] == bug["id"] and deleted["actor_id"] == owner.id
    listed = client.get(f"/api/projects/{proj['slug']}/bugs", headers=owner.headers).json
    assert [b["id"] for b in listed["data"]] == [keep["id"]] and listed["meta"]["total"] == 1
    assert [s for s, _ in outbox(bugs_db)].count(subjects.BUG_DELETED) == 1
