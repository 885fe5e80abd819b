"""GET /bugs: every filter, every sort, search, pagination and exact totals."""

from __future__ import annotations

from typing import Any

import pytest
from integration.bugs.reports_support import add_member, file_bug, patch_bug, scalar

from bugs.reports import search


def listing(client, proj, user, **params: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    resp = client.get(f"/api/projects/{proj['slug']}/bugs", query_string=params,
                      headers=user.headers)
    assert resp.status_code == 200, resp.json
    return resp.json  # type: ignore[no-any-return]


def numbers(body: dict[str, Any]) -> list[int]:
    return [b["number"] for b in body["data"]]


@pytest.fixture()
def triage(client, user, project, bugs_db):  # type: ignore[no-untyped-def]
    """Six bugs of one project (and one of another) in known states."""
    owner, dev = user("Owner"), user("Dev")
    proj = project(owner)
    add_member(bugs_db, proj, dev)
    made = [
        file_bug(client, proj, owner, "Crash when opening the inventory", category="crash",
                 priority="critical", platform="Windows", game_version="1.0.0"),
        file_bug(client, proj, owner, "Texture flickers on water", category="visual",
                 priority="low", platform="macOS", game_version="1.1.0",
                 description="The harbor water flickers"),
        file_bug(client, proj, owner, "Music too loud", category="audio", priority="medium",
                 platform="Windows", game_version="1.1.0"),
        file_bug(client, proj, owner, "Lag in multiplayer lobby", category="network",
                 priority="high", platform="Linux", game_version="1.0.0",
                 steps="Join a lobby with 8 players"),
        file_bug(client, proj, owner, "Inventory icons blurry", category="ui", priority="low",
                 platform="windows", game_version="1.2.0"),
        file_bug(client, proj, owner, "UI scale wrong on 4K", category="ui", priority="high"),
    ]
    patch_bug(client, proj, owner, made[0], status="in_progress", assignee=dev.id)
    patch_bug(client, proj, owner, made[1], status="resolved", assignee=owner.id)
    patch_bug(client, proj, owner, made[2], status="closed")
    patch_bug(client, proj, owner, made[3], assignee=dev.id)
    other = project(owner, name="Other game")
    file_bug(client, other, owner, "Crash in the other game", category="crash")
    return {"owner": owner, "dev": dev, "proj": proj, "bugs": made}


def test_default_list_is_newest_first_with_meta(client, triage) -> None:  # type: ignore[no-untyped-def]
    body = listing(client, triage["proj"], triage["owner"])
    assert numbers(body) == [6, 5, 4, 3, 2, 1]
    assert body["meta"] == {"page": 1, "limit": 20, "total": 6, "pages": 1}
    assert body["data"][0]["labels"] == [] and body["data"][0]["player_email"] is None


@pytest.mark.parametrize(("params", "expected"), [
    ({"status": "open"}, [6, 5, 4]),
    ({"status": "resolved,closed"}, [3, 2]),
    ({"priority": "low"}, [5, 2]),
    ({"priority": "high,critical"}, [6, 4, 1]),
    ({"category": "ui"}, [6, 5]),
    ({"category": "crash,network", "status": "open"}, [4]),
    ({"platform": "Windows"}, [5, 3, 1]),  # case-insensitive
    ({"game_version": "1.1.0"}, [3, 2]),
    ({"game_version": "1.1.0", "status": "closed"}, [3]),
    ({"assignee": "none"}, [6, 5, 3]),
    ({"status": "open", "assignee": "none", "priority": "low"}, [5]),
    ({"platform": "PlayStation"}, []),
])
def test_filters_combine_and_totals_are_exact(client, triage, params, expected) -> None:  # type: ignore[no-untyped-def]
    body = listing(client, triage["proj"], triage["owner"], **params)
    assert numbers(body) == expected and body["meta"]["total"] == len(expected)


def test_assignee_filter_takes_a_user_id_or_me(client, triage) -> None:  # type: ignore[no-untyped-def]
    proj, owner, dev = triage["proj"], triage["owner"], triage["dev"]
    assert numbers(listing(client, proj, owner, assignee=dev.id)) == [4, 1]
    assert numbers(listing(client, proj, dev, assignee="me")) == [4, 1]
    assert numbers(listing(client, proj, owner, assignee="me")) == [2]


def test_label_filter_takes_an_id_or_a_name(client, triage) -> None:  # type: ignore[no-untyped-def]
    proj, owner, bugs = triage["proj"], triage["owner"], triage["bugs"]
    label = client.post(f"/api/projects/{proj['slug']}/labels", headers=owner.headers,
                        json={"name": "Needs Repro", "color": "#123456"}).json["data"]
    for bug in (bugs[1], bugs[4]):
        client.post(f"/api/projects/{proj['slug']}/bugs/{bug['id']}/labels",
                    json={"label_id": label["id"]}, headers=owner.headers)
    assert numbers(listing(client, proj, owner, label=label["id"])) == [5, 2]
    body = listing(client, proj, owner, label="needs repro", status="open")
    assert numbers(body) == [5] and body["meta"]["total"] == 1
    assert listing(client, proj, owner, label="no such label")["meta"]["total"] == 0


@pytest.mark.parametrize(("sort", "expected"), [
    ("newest", [6, 5, 4, 3, 2, 1]),
    ("oldest", [1, 2, 3, 4, 5, 6]),
    ("priority", [1, 6, 4, 3, 5, 2]),  # critical, high (newest first), medium, low
])
def test_sorts_are_deterministic_with_ties_newest_first(client, triage, sort, expected) -> None:  # type: ignore[no-untyped-def]
    assert numbers(listing(client, triage["proj"], triage["owner"], sort=sort)) == expected


def test_sort_by_votes_and_by_update_time(client, user, triage, bugs_db) -> None:  # type: ignore[no-untyped-def]
    proj, owner, bugs = triage["proj"], triage["owner"], triage["bugs"]
    base = f"/api/projects/{proj['slug']}/bugs"
    voters = [user(f"Voter {i}") for i in range(3)]
    for voter in voters:
        add_member(bugs_db, proj, voter)
    for n, bug in ((3, bugs[2]), (1, bugs[0]), (1, bugs[4])):
        for voter in voters[:n]:
            assert client.post(f"{base}/{bug['id']}/upvote", headers=voter.headers).status_code == 200
    assert numbers(listing(client, proj, owner, sort="votes")) == [3, 5, 1, 6, 4, 2]
    patch_bug(client, proj, owner, bugs[1], title="Water texture flickers")
    assert numbers(listing(client, proj, owner, sort="updated"))[0] == 2


def test_pagination_pages_through_and_past_the_end(client, triage) -> None:  # type: ignore[no-untyped-def]
    proj, owner = triage["proj"], triage["owner"]
    first = listing(client, proj, owner, limit=4)
    second = listing(client, proj, owner, limit=4, page=2)
    assert numbers(first) == [6, 5, 4, 3] and numbers(second) == [2, 1]
    assert second["meta"] == {"page": 2, "limit": 4, "total": 6, "pages": 2}
    past = listing(client, proj, owner, limit=4, page=9)
    assert past["data"] == [] and past["meta"]["total"] == 6


@pytest.mark.parametrize(("params", "field"), [
    ({"status": "opened"}, "status"), ({"status": "open,nope"}, "status"),
    ({"priority": "urgent"}, "priority"), ({"category": "bugs"}, "category"),
    ({"sort": "popular"}, "sort"), ({"assignee": "someone"}, "assignee"),
    ({"page": "0"}, "page"), ({"limit": "101"}, "limit"), ({"limit": "x"}, "limit"),
    ({"search": "s" * 201}, "search"),
])
def test_unknown_filter_values_are_400_naming_the_field(client, triage, params, field) -> None:  # type: ignore[no-untyped-def]
    resp = client.get(f"/api/projects/{triage['proj']['slug']}/bugs", query_string=params,
                      headers=triage["owner"].headers)
    assert resp.status_code == 400 and resp.json["ok"] is False
    assert field in resp.json["details"] and field in resp.json["error"]


def test_search_is_case_insensitive_partial_and_covers_steps_and_comments(client, triage) -> None:  # type: ignore[no-untyped-def]
    proj, owner, bugs = triage["proj"], triage["owner"], triage["bugs"]
    assert sorted(numbers(listing(client, proj, owner, search="INVENT"))) == [1, 5]
    assert numbers(listing(client, proj, owner, search="harb")) == [2]  # description
    assert numbers(listing(client, proj, owner, search="8 players")) == [4]  # steps, short word
    assert numbers(listing(client, proj, owner, search="ventory icon")) == [5]  # every word
    assert listing(client, proj, owner, search="zzzz")["meta"]["total"] == 0
    client.post(f"/api/projects/{proj['slug']}/bugs/{bugs[2]['id']}/comments",
                json={"body": "Also the volume slider resets"}, headers=owner.headers)
    body = listing(client, proj, owner, search="slider")
    assert numbers(body) == [3] and body["meta"]["total"] == 1


def test_search_ranks_by_relevance_unless_a_sort_is_given(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    proj = project(owner)
    file_bug(client, proj, owner, "Crash on start", description="The texture loader fails")
    file_bug(client, proj, owner, "Blurry texture on rocks")
    file_bug(client, proj, owner, "Sound glitch", steps="Look at any texture")
    file_bug(client, proj, owner, "Texture missing", description="texture is pink")
    assert numbers(listing(client, proj, owner, search="texture")) == [4, 2, 3, 1]
    assert numbers(listing(client, proj, owner, search="texture", sort="oldest")) == [1, 2, 3, 4]
    second = listing(client, proj, owner, search="the texture", limit=3, page=2)
    assert numbers(second) == [1] and second["meta"]["total"] == 4  # "the" is left out
    past = listing(client, proj, owner, search="texture", limit=3, page=3)
    assert past["data"] == [] and past["meta"]["total"] == 4


def test_broad_searches_rank_title_matches_first_and_estimate_the_total(client, user, project, bugs_db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    proj = project(owner)
    for i in range(7):
        file_bug(client, proj, owner, f"Crash number {i}" if i % 3 == 0 else f"Other {i}",
                 description="the game crashed")
    monkeypatch.setattr(search, "SEARCH_RANK_CAP", 3)
    body = listing(client, proj, owner, search="crash", limit=4)
    assert numbers(body) == [7, 4, 1, 6]  # the three title matches newest first, then the rest
    assert body["meta"]["total_exact"] is False and body["meta"]["total"] >= 4
    assert numbers(listing(client, proj, owner, search="crash", limit=4, page=2)) == [5, 3, 2]
    assert numbers(listing(client, proj, owner, search="crash", limit=2, page=2)) == [1, 6]
    filtered = listing(client, proj, owner, search="crash", status="open,closed", limit=2)
    assert numbers(filtered) == [7, 4] and filtered["meta"]["total_exact"] is False


def test_totals_stay_exact_through_updates_bulk_and_deletes(client, triage, bugs_db) -> None:  # type: ignore[no-untyped-def]
    proj, owner, bugs = triage["proj"], triage["owner"], triage["bugs"]
    client.post(f"/api/projects/{proj['slug']}/bugs/bulk", headers=owner.headers,
                json={"bug_ids": [bugs[4]["id"], bugs[5]["id"]], "status": "wont_fix"})
    client.delete(f"/api/projects/{proj['slug']}/bugs/{bugs[3]['id']}", headers=owner.headers)
    for params, expected in (({"status": "open"}, 0), ({"status": "wont_fix"}, 2),
                             ({}, 5), ({"category": "ui", "priority": "low"}, 1)):
        assert listing(client, proj, owner, **params)["meta"]["total"] == expected, params
    counted = scalar(bugs_db, "SELECT sum(n) FROM bug_counts WHERE project_id = :p", p=proj["id"])
    assert counted == scalar(bugs_db, "SELECT count(*) FROM bugs WHERE project_id = :p",
                             p=proj["id"])
