"""The public tracker's bugs: list, detail, votes and player submissions. Players see public
bugs only, through an allow-list of fields: never an email, a user id or an internal comment."""

from __future__ import annotations

import json

import sqlalchemy as sa
from integration.bugs.public_support import (
    add_comment,
    add_member,
    count,
    file_bug,
    outbox,
    set_tracker,
)

from bugnet_common.bus import subjects
from bugs.models import Bug, UserRef, Vote

PUBLIC_FIELDS = {"id", "number", "title", "description", "status", "category", "steps",
                 "expected", "actual", "platform", "game_version", "votes", "voted",
                 "created_at", "updated_at", "resolved_at"}


def _tracker(client, user, project, **settings):  # type: ignore[no-untyped-def]
    owner = user("Owner")
    created = project(owner)
    set_tracker(client, created, owner.headers, enabled=True, **settings)
    return owner, created, f"/api/projects/{created['slug']}/public"


def test_public_list_shows_only_public_bugs_and_only_public_fields(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    _, created, base = _tracker(client, user, project)
    dev = user("Dev Person", email="dev.person@studio.example")
    add_member(bugs_db, created, dev.id)
    shown = file_bug(bugs_db, created, "Falls through floor", description="On the bridge",
                     player_email="player@mail.example", os_info="SecretOS 11",
                     device_info="RTX-SECRET", priority="critical", reporter_name="xXplayerXx",
                     reporter_steam_id="76561190000000000", assignee_id=dev.id,
                     reporter_user_id=dev.id, fingerprint="f" * 64)
    add_comment(bugs_db, shown, "INTERNAL-NOTE: the physics tick is wrong", author_id=dev.id,
                internal=True)
    hidden = file_bug(bugs_db, created, "Unannounced boss is too hard", public=False)
    resp = client.get(f"{base}/bugs")
    assert resp.status_code == 200 and resp.json["ok"] is True
    assert [b["id"] for b in resp.json["data"]] == [shown.id]
    assert set(resp.json["data"][0]) == PUBLIC_FIELDS
    assert resp.json["data"][0]["voted"] is False
    detail = client.get(f"{base}/bugs/{shown.id}")
    assert set(detail.json["data"]) == PUBLIC_FIELDS | {"comments"}
    assert detail.json["data"]["comments"] == []
    for raw in (resp.get_data(as_text=True), detail.get_data(as_text=True)):
        for secret in ("player@mail.example", "dev.person@studio.example", dev.id, "SecretOS",
                       "RTX-SECRET", "critical", "xXplayerXx", "76561190000000000", "f" * 64,
                       "INTERNAL-NOTE", hidden.id, "Unannounced", "player_email", "@"):
            assert secret not in raw, secret


def test_category_is_shown_only_when_the_tracker_shows_categories(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, created, base = _tracker(client, user, project, show_categories=False)
    bug = file_bug(bugs_db, created, "Sound pops", category="audio")
    listed = client.get(f"{base}/bugs").json["data"][0]
    assert "category" not in listed and "audio" not in json.dumps(listed)
    assert "category" not in client.get(f"{base}/bugs/{bug.id}").json["data"]
    refused = client.get(f"{base}/bugs?category=audio")
    assert refused.status_code == 400 and "category" in refused.json["details"]
    set_tracker(client, created, owner.headers, show_categories=True)
    assert client.get(f"{base}/bugs?category=audio").json["data"][0]["category"] == "audio"
    assert client.get(f"{base}/bugs?category=visual").json["data"] == []


def test_public_detail_shows_non_internal_comments_by_display_name_only(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    _, created, base = _tracker(client, user, project)
    dev = user("Dana Dev", email="dana@studio.example")
    gone = user("Gone Person", email="gone@studio.example")
    bug = file_bug(bugs_db, created, "Crash on load")
    add_comment(bugs_db, bug, "We can reproduce it", author_id=dev.id, minutes=1)
    add_comment(bugs_db, bug, "Looks like the shader cache, ask dana@studio.example",
                author_id=dev.id, internal=True, minutes=2)
    add_comment(bugs_db, bug, "Fixed in 1.2", author_id=gone.id, minutes=3)
    add_comment(bugs_db, bug, "Thanks for the report", author_id=None, minutes=4)
    with bugs_db.begin() as session:
        row = session.get(UserRef, gone.id)
        assert row is not None
        row.deleted = True
    resp = client.get(f"{base}/bugs/{bug.id}")
    assert resp.status_code == 200
    comments = resp.json["data"]["comments"]
    assert [(c["body"], c["author"]) for c in comments] == [
        ("We can reproduce it", {"display_name": "Dana Dev"}),
        ("Fixed in 1.2", {"display_name": "Deleted user"}),
        ("Thanks for the report", {"display_name": "Deleted user"})]
    raw = resp.get_data(as_text=True)
    for secret in ("shader cache", "@studio.example", dev.id, gone.id, "internal"):
        assert secret not in raw


def test_a_bug_that_is_not_public_or_of_another_project_or_malformed_is_404(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, created, base = _tracker(client, user, project)
    other = project(owner, name="Other Game")
    set_tracker(client, other, owner.headers, enabled=True)
    private = file_bug(bugs_db, created, "Private", public=False)
    foreign = file_bug(bugs_db, other, "Foreign public bug")
    for bug_id in (private.id, foreign.id, "not-a-uuid", "00000000-0000-0000-0000-000000000000",
                   private.id.upper() + "0"):
        resp = client.get(f"{base}/bugs/{bug_id}")
        assert resp.status_code == 404 and resp.json == {"ok": False, "error": "Bug not found",
                                                         "code": "not_found"}, bug_id
        assert client.post(f"{base}/bugs/{bug_id}/vote").status_code == 404
    assert count(bugs_db, Vote.__table__) == 0


def test_filters_sorts_and_pagination_with_meta(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    _, created, base = _tracker(client, user, project)
    b1 = file_bug(bugs_db, created, "One", votes=5)
    b2 = file_bug(bugs_db, created, "Two", votes=9, status="resolved")
    b3 = file_bug(bugs_db, created, "Three", votes=5)
    b4 = file_bug(bugs_db, created, "Four", votes=0, status="resolved")
    file_bug(bugs_db, created, "Hidden", votes=99, public=False)

    def ids(query: str) -> list[str]:
        resp = client.get(f"{base}/bugs{query}")
        assert resp.status_code == 200, resp.json
        return [b["id"] for b in resp.json["data"]]

    assert ids("") == [b4.id, b3.id, b2.id, b1.id]
    assert ids("?sort=oldest") == [b1.id, b2.id, b3.id, b4.id]
    assert ids("?sort=votes") == [b2.id, b3.id, b1.id, b4.id]  # ties: newest first
    assert ids("?status=resolved") == [b4.id, b2.id]
    assert ids("?status=open&sort=votes") == [b3.id, b1.id]
    page = client.get(f"{base}/bugs?limit=3&page=2")
    assert page.json["meta"] == {"page": 2, "limit": 3, "total": 4, "pages": 2}
    assert [b["id"] for b in page.json["data"]] == [b1.id]
    assert client.get(f"{base}/bugs?limit=3").json["meta"] == {"page": 1, "limit": 3,
                                                               "total": 4, "pages": 2}
    for bad, field in (("status=bogus", "status"), ("sort=priority", "sort"),
                       ("category=nope", "category"), ("limit=101", "limit"),
                       ("page=0", "page"), ("limit=x", "limit"), ("search=" + "x" * 201, "search")):
        resp = client.get(f"{base}/bugs?{bad}")
        assert resp.status_code == 400 and field in resp.json["details"], bad


def test_search_ranks_a_title_match_first_and_matches_partial_words_in_any_case(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    _, created, base = _tracker(client, user, project)
    in_title = file_bug(bugs_db, created, "Crash when opening the Inventory")
    in_description = file_bug(bugs_db, created, "Game freezes", description="after the inventory opens")
    in_steps = file_bug(bugs_db, created, "Items vanish", steps="1. open inventory 2. drop")
    file_bug(bugs_db, created, "Music too loud")
    file_bug(bugs_db, created, "Inventory is secret", public=False)

    def ids(query: str) -> list[str]:
        resp = client.get(f"{base}/bugs?search={query}")
        assert resp.status_code == 200
        return [b["id"] for b in resp.json["data"]]

    # The title match is the oldest: relevance, not recency, puts it first.
    assert ids("inventory")[0] == in_title.id
    assert set(ids("inventory")) == {in_title.id, in_description.id, in_steps.id}
    assert ids("INVENT")[0] == in_title.id
    assert ids("invent open")[0] == in_title.id
    assert ids("freez") == [in_description.id]
    assert ids("100%25") == []  # a literal %, not a wildcard
    assert ids("inventory&sort=oldest") == [in_title.id, in_description.id, in_steps.id]
    meta = client.get(f"{base}/bugs?search=inventory&limit=1").json["meta"]
    assert meta["total"] == 3


def test_search_finds_public_comments_but_never_internal_ones(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    _, created, base = _tracker(client, user, project)
    dev = user("Dev")
    bug = file_bug(bugs_db, created, "Lag spikes")
    add_comment(bugs_db, bug, "the zebra shader is slow", author_id=dev.id, internal=True)
    assert client.get(f"{base}/bugs?search=zebra").json["data"] == []
    add_comment(bugs_db, bug, "Also seen near the giraffe statue", author_id=dev.id)
    assert [b["id"] for b in client.get(f"{base}/bugs?search=giraffe").json["data"]] == [bug.id]


def test_search_is_refused_when_the_tracker_turns_it_off(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    _, created, base = _tracker(client, user, project, allow_search=False)
    file_bug(bugs_db, created, "Crash")
    resp = client.get(f"{base}/bugs?search=crash")
    assert resp.status_code == 400 and "search" in resp.json["details"]
    assert "turned off" in resp.json["error"]
    assert client.get(f"{base}/bugs?search=").status_code == 200  # an empty search is no search


def test_one_vote_per_client_keyed_by_ip_and_agent_or_by_signed_in_user(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    _, created, base = _tracker(client, user, project)
    bug = file_bug(bugs_db, created, "Crash")
    player = user("Player")
    url = f"{base}/bugs/{bug.id}/vote"
    firefox = {"User-Agent": "Firefox/130"}
    first = client.post(url, headers=firefox)
    assert first.status_code == 200 and first.json["data"] == {"votes": 1, "voted": True}
    # The same client again, this time with an empty JSON body: still one vote.
    again = client.post(url, headers=firefox, data="", content_type="application/json")
    assert again.status_code == 200 and again.json["data"]["votes"] == 1
    assert client.post(url, headers={"User-Agent": "Chrome/128"}).json["data"]["votes"] == 2
    # A signed-in user counts as themself, whatever browser they use.
    assert client.post(url, headers=player.headers | firefox).json["data"]["votes"] == 3
    assert client.post(url, headers=player.headers | {"User-Agent": "Safari"}).json["data"]["votes"] == 3
    listed = client.get(f"{base}/bugs", headers=firefox).json["data"][0]
    assert listed["votes"] == 3 and listed["voted"] is True
    assert client.get(f"{base}/bugs", headers={"User-Agent": "Lynx"}).json["data"][0]["voted"] is False
    assert client.get(f"{base}/bugs/{bug.id}", headers=player.headers).json["data"]["voted"] is True
    with bugs_db.engine.connect() as conn:
        keys = conn.execute(sa.select(Vote.__table__.c.voter_key)).scalars().all()
        stored = conn.execute(sa.select(Bug.__table__.c.votes)).scalar_one()
    assert stored == 3 and len(keys) == 3 and f"user:{player.id}" in keys
    assert client.post(url, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_voting_turned_off_is_403_and_counts_nothing(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    _, created, base = _tracker(client, user, project, allow_voting=False)
    bug = file_bug(bugs_db, created, "Crash")
    resp = client.post(f"{base}/bugs/{bug.id}/vote")
    assert resp.status_code == 403 and resp.json["ok"] is False
    assert "Voting is turned off" in resp.json["error"]
    assert count(bugs_db, Vote.__table__) == 0


def test_player_submission_is_filed_hidden_until_triaged(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    _, _, base = _tracker(client, user, project, allow_submissions=True)
    resp = client.post(f"{base}/bugs", json={
        "title": "Stuck in wall", "description": "Near the castle gate", "category": "gameplay",
        "player_email": "kid@mail.example", "priority": "critical", "is_public": True})
    assert resp.status_code == 201 and resp.json["ok"] is True
    data = resp.json["data"]
    assert set(data) == PUBLIC_FIELDS and "kid@mail.example" not in resp.get_data(as_text=True)
    assert data["title"] == "Stuck in wall" and data["category"] == "gameplay"
    assert data["status"] == "open" and data["number"] == 1 and data["votes"] == 0
    with bugs_db.session() as session:
        stored = session.get(Bug, data["id"])
        assert stored is not None
        assert (stored.source, stored.is_public, stored.player_email, stored.priority) == (
            "public", False, "kid@mail.example", "medium")
        assert stored.reporter_user_id is None and stored.reporter_name is None
    created_events = [d for s, d in outbox(bugs_db) if s == subjects.BUG_CREATED]
    assert [e["bug"]["id"] for e in created_events] == [data["id"]]
    assert created_events[0]["bug"]["source"] == "public"
    # Not on the tracker until the team publishes it.
    assert client.get(f"{base}/bugs/{data['id']}").status_code == 404
    assert client.get(f"{base}/bugs").json["data"] == []


def test_player_submission_validates_its_body_and_writes_nothing_on_error(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    _, _, base = _tracker(client, user, project, allow_submissions=True)
    for body, field in (({"description": "no title"}, "title"),
                        ({"title": "No description"}, "description"),
                        ({"title": "x" * 301, "description": "d"}, "title"),
                        ({"title": "t", "description": "d", "category": "bogus"}, "category"),
                        ({"title": "t", "description": "d", "player_email": "nope"}, "player_email"),
                        ({"title": 5, "description": "d"}, "title")):
        resp = client.post(f"{base}/bugs", json=body)
        assert resp.status_code == 400 and field in resp.json["details"], body
    assert client.post(f"{base}/bugs", data="x", content_type="text/plain").status_code == 415
    assert client.post(f"{base}/bugs").status_code == 400
    assert count(bugs_db, Bug.__table__) == 0


def test_submissions_closed_is_403_even_for_a_bad_body(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    _, _, base = _tracker(client, user, project)  # allow_submissions defaults to off
    for body in ({"title": "Crash", "description": "It crashed"}, {"title": 5}):
        resp = client.post(f"{base}/bugs", json=body)
        assert resp.status_code == 403 and resp.json["error"] == "Submissions are closed on this tracker"
    assert count(bugs_db, Bug.__table__) == 0
