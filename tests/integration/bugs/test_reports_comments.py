"""Comments, the activity log and upvotes."""

from __future__ import annotations

from integration.bugs.reports_support import add_member, events, file_bug, patch_bug, scalar

from bugnet_common.bus import subjects
from bugs.models import Tracker


def test_comment_is_stored_searchable_logged_and_announced(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    proj = project(owner)
    bug = file_bug(client, proj, owner, "Crash", description="On boot")
    resp = client.post(f"/api/projects/{proj['slug']}/bugs/{bug['id']}/comments",
                       json={"body": "  Happens with the Vulkan renderer  "}, headers=owner.headers)
    assert resp.status_code == 201
    comment = resp.json["data"]
    assert comment["body"] == "Happens with the Vulkan renderer" and comment["internal"] is False
    assert comment["author"] == {"id": owner.id, "display_name": "Owner", "avatar": None}
    assert set(comment) == {"id", "body", "internal", "author", "created_at"}
    assert scalar(bugs_db, "SELECT search_text FROM bugs") == (
        "Crash\nOn boot\nHappens with the Vulkan renderer")
    [added] = events(bugs_db, subjects.COMMENT_ADDED)
    assert added["comment_id"] == comment["id"] and added["author_id"] == owner.id
    assert added["bug"]["id"] == bug["id"] and added["internal"] is False
    # Editing the title keeps the comment in search_text.
    patch_bug(client, proj, owner, bug, title="Crash on start")
    assert scalar(bugs_db, "SELECT search_text FROM bugs").endswith("Vulkan renderer")


def test_internal_comments_need_comments_internal(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, helper, reader = user("Owner"), user("Helper"), user("Reader")
    proj = project(owner)
    add_member(bugs_db, proj, helper, comments_internal=False)
    add_member(bugs_db, proj, reader, comments_create=False)
    bug = file_bug(client, proj, owner, "Bug")
    url = f"/api/projects/{proj['slug']}/bugs/{bug['id']}/comments"
    assert client.post(url, json={"body": "x", "internal": True},
                       headers=helper.headers).status_code == 403
    assert client.post(url, json={"body": "x"}, headers=reader.headers).status_code == 403
    assert client.post(url, json={"body": "public note"}, headers=helper.headers).status_code == 201
    resp = client.post(url, json={"body": "team only", "internal": True}, headers=owner.headers)
    assert resp.status_code == 201 and resp.json["data"]["internal"] is True
    assert scalar(bugs_db, "SELECT count(*) FROM comments") == 2


def test_comment_bodies_are_validated(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    proj = project(owner)
    bug = file_bug(client, proj, owner, "Bug")
    url = f"/api/projects/{proj['slug']}/bugs/{bug['id']}/comments"
    for body, field in (({"body": ""}, "body"), ({"body": "   "}, "body"),
                        ({"body": "x" * 10_001}, "body"), ({}, "body"),
                        ({"body": "x", "internal": "yes"}, "internal"), ({"body": 3}, "body")):
        resp = client.post(url, json=body, headers=owner.headers)
        assert resp.status_code == 400 and field in resp.json["details"], body
    assert client.post(url, data="not json", headers={**owner.headers, "Content-Type":
                                                      "application/json"}).status_code == 400
    assert scalar(bugs_db, "SELECT count(*) FROM comments") == 0


def test_activity_is_paginated_newest_first(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    proj = project(owner)
    bug = file_bug(client, proj, owner, "Bug")
    for priority in ("low", "high", "critical"):
        patch_bug(client, proj, owner, bug, priority=priority)
    client.post(f"/api/projects/{proj['slug']}/bugs/{bug['id']}/comments", json={"body": "hi"},
                headers=owner.headers)
    url = f"/api/projects/{proj['slug']}/bugs/{bug['id']}/activity"
    first = client.get(url, query_string={"limit": 2}, headers=owner.headers).json
    assert first["meta"] == {"page": 1, "limit": 2, "total": 5, "pages": 3}
    assert [a["action"] for a in first["data"]] == ["commented", "changed"]
    assert first["data"][1] | {"id": None, "created_at": None} == {
        "id": None, "actor": {"id": owner.id, "display_name": "Owner", "avatar": None},
        "action": "changed", "field": "priority", "from": "high", "to": "critical",
        "created_at": None}
    last = client.get(url, query_string={"limit": 2, "page": 3}, headers=owner.headers).json
    assert [a["action"] for a in last["data"]] == ["created"]


def test_upvote_counts_one_vote_per_client(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, dev = user("Owner"), user("Dev")
    proj = project(owner)
    add_member(bugs_db, proj, dev)
    bug = file_bug(client, proj, owner, "Bug")
    url = f"/api/projects/{proj['slug']}/bugs/{bug['id']}/upvote"
    assert client.post(url, headers=owner.headers).json["data"] == {"votes": 1}
    assert client.post(url, headers=owner.headers).json["data"] == {"votes": 1}
    resp = client.post(url, headers={**dev.headers, "Content-Type": "application/json"})
    assert resp.status_code == 200 and resp.json["data"] == {"votes": 2}
    assert scalar(bugs_db, "SELECT votes FROM bugs") == 2
    assert scalar(bugs_db, "SELECT count(*) FROM votes") == 2


def test_anonymous_upvotes_only_public_bugs_of_a_voting_tracker(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, stranger = user("Owner"), user("Stranger")
    proj = project(owner)
    bug = file_bug(client, proj, owner, "Bug")
    url = f"/api/projects/{proj['slug']}/bugs/{bug['id']}/upvote"
    assert client.post(url).status_code == 404  # private bug
    patch_bug(client, proj, owner, bug, is_public=True)
    assert client.post(url).status_code == 404  # tracker disabled
    with bugs_db.begin() as session:
        tracker = session.get(Tracker, proj["id"])
        tracker.enabled = True
    player = {"REMOTE_ADDR": "203.0.113.7"}
    ua = {"User-Agent": "GodotGame/1.0"}
    assert client.post(url, environ_base=player, headers=ua).json["data"] == {"votes": 1}
    assert client.post(url, environ_base=player, headers=ua).json["data"] == {"votes": 1}
    assert client.post(url, environ_base={"REMOTE_ADDR": "203.0.113.8"},
                       headers=ua).json["data"] == {"votes": 2}
    assert client.post(url, headers=stranger.headers).json["data"] == {"votes": 3}
    with bugs_db.begin() as session:
        session.get(Tracker, proj["id"]).allow_voting = False
    assert client.post(url, headers=stranger.headers).status_code == 404
    assert client.post(f"/api/projects/{proj['slug']}/bugs/not-a-uuid/upvote").status_code == 404
    assert client.post("/api/projects/nope/bugs/x/upvote").status_code == 404
    assert client.post(url, headers={"Authorization": "Bearer bad"}).status_code == 401


def test_upvote_answers_for_a_project_the_caller_cannot_see_as_for_a_missing_one(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, stranger = user("Owner"), user("Stranger")
    proj = project(owner)
    bug = file_bug(client, proj, owner, "Bug")
    patch_bug(client, proj, owner, bug, is_public=True)  # public, but the tracker is disabled
    missing = client.post(f"/api/projects/no-such-project/bugs/{bug['id']}/upvote")
    assert missing.status_code == 404
    for headers in ({}, stranger.headers):
        for bug_id in (bug["id"], "00000000-0000-4000-8000-000000000000", "not-a-uuid"):
            resp = client.post(f"/api/projects/{proj['slug']}/bugs/{bug_id}/upvote",
                               headers=headers)
            assert resp.status_code == 404 and resp.json == missing.json, (headers, bug_id)
    assert scalar(bugs_db, "SELECT count(*) FROM votes") == 0
