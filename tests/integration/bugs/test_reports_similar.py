"""POST /bugs/similar: reworded duplicates, scored and ranked."""

from __future__ import annotations

from integration.bugs.reports_support import add_member, file_bug


def test_similar_finds_a_reworded_duplicate_first(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    proj = project(owner)
    dup = file_bug(client, proj, owner, "Player falls through floor on bridge",
                   description="Crossing the bridge the player drops through the floor.")
    for title in ("Bridge texture missing on low settings", "Player cannot jump on the bridge",
                  "Game crashes when opening the inventory", "Floor tiles flicker in the castle",
                  "Enemy falls asleep during combat"):
        file_bug(client, proj, owner, title)
    resp = client.post(f"/api/projects/{proj['slug']}/bugs/similar", headers=owner.headers,
                       json={"title": "fell through the ground near the bridge, level 3"})
    assert resp.status_code == 200
    ranked = resp.json["data"]
    assert ranked[0]["bug"]["id"] == dup["id"]
    scores = [r["score"] for r in ranked]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert len(ranked) <= 10 and ranked[0]["score"] > ranked[1]["score"]


def test_similar_returns_at_most_ten_and_nothing_for_unrelated_text(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    proj = project(owner)
    for i in range(14):
        file_bug(client, proj, owner, f"Audio crackles in menu {i}")
    url = f"/api/projects/{proj['slug']}/bugs/similar"
    ranked = client.post(url, json={"title": "Crackling audio in the menu", "description": ""},
                         headers=owner.headers).json["data"]
    assert len(ranked) == 10
    assert client.post(url, json={"title": "zebra quantum"}, headers=owner.headers).json[
        "data"] == []


def test_similar_needs_bugs_view_and_a_title(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, stranger, blind = user(), user(), user()
    proj = project(owner)
    add_member(bugs_db, proj, blind, bugs_view=False)
    url = f"/api/projects/{proj['slug']}/bugs/similar"
    assert client.post(url, json={"title": "x"}, headers=stranger.headers).status_code == 404
    assert client.post(url, json={"title": "x"}, headers=blind.headers).status_code == 403
    for body in ({}, {"title": ""}, {"title": "x" * 301}, {"title": "x", "description": 5}):
        assert client.post(url, json=body, headers=owner.headers).status_code == 400, body


def test_similar_falls_back_to_trigrams_for_misspelt_titles(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    proj = project(owner)
    shadows = file_bug(client, proj, owner, "Flickering shadows at night")
    file_bug(client, proj, owner, "Music too loud in the menu")
    ranked = client.post(f"/api/projects/{proj['slug']}/bugs/similar", headers=owner.headers,
                         json={"title": "Flikkering shaddows"}).json["data"]
    assert ranked and ranked[0]["bug"]["id"] == shadows["id"]
