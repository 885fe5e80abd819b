"""POST /bugs/bulk: one change to many bugs, all of them or none."""

from __future__ import annotations

import uuid

from integration.bugs.reports_support import add_member, events, file_bug, scalar

from bugnet_common.bus import subjects


def test_bulk_update_changes_every_bug_with_activity_and_events(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, dev = user("Owner"), user("Dev")
    proj = project(owner)
    add_member(bugs_db, proj, dev)
    bugs = [file_bug(client, proj, owner, f"Bug {i}", game_version="2.0") for i in range(3)]
    resp = client.post(f"/api/projects/{proj['slug']}/bugs/bulk", headers=owner.headers, json={
        "bug_ids": [b["id"] for b in bugs] + [bugs[0]["id"]], "status": "resolved",
        "priority": "high", "assignee": dev.id})
    assert resp.status_code == 200 and resp.json["data"] == {"updated": 3}
    rows = scalar(bugs_db, "SELECT count(*) FROM bugs WHERE status = 'resolved' AND priority = "
                           "'high' AND assignee_id = :d AND resolved_at IS NOT NULL "
                           "AND resolved_in_version = '2.0'", d=dev.id)
    assert rows == 3
    assert scalar(bugs_db, "SELECT count(*) FROM activity WHERE action = 'changed'") == 9
    updated = events(bugs_db, subjects.BUG_UPDATED)
    assert sorted(e["bug"]["id"] for e in updated) == sorted(b["id"] for b in bugs)
    assert updated[0]["changes"]["assignee"] == {"from": None, "to": dev.id}
    assert len(events(bugs_db, subjects.BUG_RESOLVED)) == 3


def test_bulk_with_a_foreign_or_unknown_bug_changes_nothing(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    proj, other = project(owner, name="Mine"), project(owner, name="Other")
    mine = [file_bug(client, proj, owner, f"Bug {i}") for i in range(2)]
    foreign = file_bug(client, other, owner, "Not mine")
    url = f"/api/projects/{proj['slug']}/bugs/bulk"
    before = len(events(bugs_db, subjects.BUG_UPDATED))
    for stray in (foreign["id"], str(uuid.uuid4())):
        resp = client.post(url, headers=owner.headers,
                           json={"bug_ids": [mine[0]["id"], stray, mine[1]["id"]], "status": "closed"})
        assert resp.status_code == 404 and stray in resp.json["error"]
    resp = client.post(url, headers=owner.headers, json={"bug_ids": [mine[0]["id"], "nope"],
                                                         "status": "closed"})
    assert resp.status_code == 400 and "bug_ids.1" in resp.json["details"]
    assert scalar(bugs_db, "SELECT count(*) FROM bugs WHERE status = 'closed'") == 0
    assert scalar(bugs_db, "SELECT count(*) FROM activity WHERE action = 'changed'") == 0
    assert len(events(bugs_db, subjects.BUG_UPDATED)) == before


def test_bulk_refuses_bad_bodies(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    proj = project(owner)
    bug = file_bug(client, proj, owner, "x")
    url = f"/api/projects/{proj['slug']}/bugs/bulk"
    for body, field in (({"bug_ids": [], "status": "open"}, "bug_ids"),
                        ({"status": "open"}, "bug_ids"),
                        ({"bug_ids": bug["id"], "status": "open"}, "bug_ids"),
                        ({"bug_ids": [bug["id"]], "status": "fixed"}, "status"),
                        ({"bug_ids": [bug["id"]]}, "body")):
        resp = client.post(url, json=body, headers=owner.headers)
        assert resp.status_code == 400 and field in resp.json["details"], body


def test_bulk_assignment_needs_bugs_assign_and_bulk_needs_bugs_edit(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, editor, viewer = user("Owner"), user("Editor"), user("Viewer")
    proj = project(owner)
    add_member(bugs_db, proj, editor, bugs_assign=False)
    add_member(bugs_db, proj, viewer, bugs_edit=False)
    bugs = [file_bug(client, proj, owner, f"Bug {i}") for i in range(2)]
    url = f"/api/projects/{proj['slug']}/bugs/bulk"
    ids = [b["id"] for b in bugs]
    assert client.post(url, headers=viewer.headers,
                       json={"bug_ids": ids, "status": "closed"}).status_code == 403
    assert client.post(url, headers=editor.headers,
                       json={"bug_ids": ids, "assignee": owner.id}).status_code == 403
    assert scalar(bugs_db, "SELECT count(*) FROM bugs WHERE assignee_id IS NOT NULL") == 0
    resp = client.post(url, headers=editor.headers, json={"bug_ids": ids, "status": "closed"})
    assert resp.status_code == 200 and resp.json["data"] == {"updated": 2}
