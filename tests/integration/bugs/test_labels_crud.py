"""Labels: create, list, rename, delete (off every bug), attach and detach."""

from __future__ import annotations

import uuid

from integration.bugs.reports_support import add_member, events, file_bug, scalar

from bugnet_common.bus import subjects


def make_label(client, proj, user, name: str, color: str = "#00aa00"):  # type: ignore[no-untyped-def]
    return client.post(f"/api/projects/{proj['slug']}/labels", json={"name": name, "color": color},
                       headers=user.headers)


def test_labels_are_created_listed_by_name_and_paginated(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    proj = project(owner)
    resp = make_label(client, proj, owner, "  Regression ", "#AABBCC")
    assert resp.status_code == 201
    label = resp.json["data"]
    assert (label["name"], label["color"]) == ("Regression", "#aabbcc") and label["created_at"]
    for name in ("crash", "UX", "blocker"):
        assert make_label(client, proj, owner, name).status_code == 201
    url = f"/api/projects/{proj['slug']}/labels"
    body = client.get(url, query_string={"limit": 3}, headers=owner.headers).json
    assert [lb["name"] for lb in body["data"]] == ["blocker", "crash", "Regression"]
    assert body["meta"] == {"page": 1, "limit": 3, "total": 4, "pages": 2}


def test_label_names_are_unique_per_project_case_insensitively(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    proj, other = project(owner, name="One"), project(owner, name="Two")
    assert make_label(client, proj, owner, "Crash").status_code == 201
    assert make_label(client, proj, owner, "CRASH").status_code == 409
    assert make_label(client, other, owner, "crash").status_code == 201
    second = make_label(client, proj, owner, "Visual").json["data"]
    resp = client.patch(f"/api/projects/{proj['slug']}/labels/{second['id']}",
                        json={"name": "crash"}, headers=owner.headers)
    assert resp.status_code == 409
    resp = client.put(f"/api/projects/{proj['slug']}/labels/{second['id']}",
                      json={"name": "Graphics", "color": "#112233"}, headers=owner.headers)
    assert resp.status_code == 200 and resp.json["data"]["name"] == "Graphics"
    resp = client.patch(f"/api/projects/{proj['slug']}/labels/{second['id']}",
                        json={"name": "graphics"}, headers=owner.headers)  # its own name, recased
    assert resp.status_code == 200 and resp.json["data"]["name"] == "graphics"


def test_bad_label_input_is_400_naming_the_field(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    proj = project(owner)
    url = f"/api/projects/{proj['slug']}/labels"
    for body, field in (({"name": "", "color": "#000000"}, "name"),
                        ({"name": "x" * 51, "color": "#000000"}, "name"),
                        ({"name": "x", "color": "red"}, "color"),
                        ({"name": "x", "color": "#12345"}, "color"), ({"name": "x"}, "color")):
        resp = client.post(url, json=body, headers=owner.headers)
        assert resp.status_code == 400 and field in resp.json["details"], body


def test_managing_labels_needs_labels_manage_and_listing_bugs_view(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, member, stranger = user(), user(), user()
    proj = project(owner)
    add_member(bugs_db, proj, member)  # members do not manage labels by default
    label = make_label(client, proj, owner, "ux").json["data"]
    url = f"/api/projects/{proj['slug']}/labels"
    assert client.get(url, headers=member.headers).status_code == 200
    assert client.get(url, headers=stranger.headers).status_code == 404
    assert make_label(client, proj, member, "nope").status_code == 403
    assert client.patch(f"{url}/{label['id']}", json={"name": "x"},
                        headers=member.headers).status_code == 403
    assert client.delete(f"{url}/{label['id']}", headers=member.headers).status_code == 403


def test_attach_and_detach_record_activity_and_emit_bug_updated(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    proj = project(owner)
    bug = file_bug(client, proj, owner, "Bug")
    crash = make_label(client, proj, owner, "crash").json["data"]
    audio = make_label(client, proj, owner, "audio").json["data"]
    url = f"/api/projects/{proj['slug']}/bugs/{bug['id']}/labels"
    resp = client.post(url, json={"label_id": crash["id"]}, headers=owner.headers)
    assert resp.status_code == 200 and [lb["name"] for lb in resp.json["data"]["labels"]] == ["crash"]
    again = client.post(url, json={"label_id": crash["id"]}, headers=owner.headers)
    assert again.status_code == 200 and len(again.json["data"]["labels"]) == 1
    client.post(url, json={"label_id": audio["id"]}, headers=owner.headers)
    resp = client.delete(f"{url}/{crash['id']}", headers=owner.headers)
    assert resp.status_code == 200 and [lb["name"] for lb in resp.json["data"]["labels"]] == ["audio"]
    changes = [e["changes"]["labels"] for e in events(bugs_db, subjects.BUG_UPDATED)]
    assert changes == [{"from": [], "to": ["crash"]}, {"from": ["crash"], "to": ["audio", "crash"]},
                       {"from": ["audio", "crash"], "to": ["audio"]}]
    rows = scalar(bugs_db, "SELECT count(*) FROM activity WHERE field = 'labels'")
    assert rows == 3


def test_labels_of_another_project_or_unknown_are_404(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    proj, other = project(owner, name="One"), project(owner, name="Two")
    bug = file_bug(client, proj, owner, "Bug")
    foreign = make_label(client, other, owner, "theirs").json["data"]
    url = f"/api/projects/{proj['slug']}/bugs/{bug['id']}/labels"
    for label_id in (foreign["id"], str(uuid.uuid4()), "nope"):
        assert client.post(url, json={"label_id": label_id}, headers=owner.headers).status_code == 404
        assert client.delete(f"{url}/{label_id}", headers=owner.headers).status_code == 404
        assert client.patch(f"/api/projects/{proj['slug']}/labels/{label_id}", json={"name": "x"},
                            headers=owner.headers).status_code == 404
    assert client.post(url, json={}, headers=owner.headers).status_code == 400
    assert scalar(bugs_db, "SELECT count(*) FROM bug_labels") == 0


def test_deleting_a_label_takes_it_off_every_bug(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user()
    proj = project(owner)
    label = make_label(client, proj, owner, "dupe").json["data"]
    keep = make_label(client, proj, owner, "keep").json["data"]
    bugs = [file_bug(client, proj, owner, f"Bug {i}") for i in range(3)]
    for bug in bugs:
        for lb in (label, keep):
            client.post(f"/api/projects/{proj['slug']}/bugs/{bug['id']}/labels",
                        json={"label_id": lb["id"]}, headers=owner.headers)
    resp = client.delete(f"/api/projects/{proj['slug']}/labels/{label['id']}", headers=owner.headers)
    assert resp.status_code == 200 and resp.json["data"]["id"] == label["id"]
    assert scalar(bugs_db, "SELECT count(*) FROM bug_labels WHERE label_id = :l", l=label["id"]) == 0
    assert scalar(bugs_db, "SELECT count(*) FROM bug_labels") == 3
    detail = client.get(f"/api/projects/{proj['slug']}/bugs/{bugs[0]['id']}", headers=owner.headers)
    assert [lb["name"] for lb in detail.json["data"]["labels"]] == ["keep"]
    names = [lb["name"] for lb in client.get(f"/api/projects/{proj['slug']}/labels",
                                             headers=owner.headers).json["data"]]
    assert names == ["keep"]
