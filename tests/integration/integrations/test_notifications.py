"""Notifications: preferences, the in-app list, and who is told about assignments, comments
and resolutions (handlers applied the way the worker's consumers apply them)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from integration.integrations.alerts_support import (
    bug_created,
    bus_event,
    notify_event,
    rows,
    snapshot,
)
from integration.integrations.support import Project, User, apply, event

from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects
from bugnet_common.bus.events import isoformat, utcnow
from bugnet_common.db import Database
from integrations.settings import IntegrationsSettings

PREFS = "/api/notifications/preferences"


@pytest.fixture()
def notify(integrations_db: Database,
           integrations_settings: IntegrationsSettings) -> Callable[[ev.Event], None]:
    return lambda e: notify_event(integrations_db, integrations_settings, e)


def inbox(client: FlaskClient, who: User, query: str = "") -> dict[str, Any]:
    resp = client.get(f"/api/notifications{query}", headers=who.headers)
    assert resp.status_code == 200, resp.json
    return resp.json  # type: ignore[no-any-return]


def assigned(p: Project, bug: ev.BugSnapshot, *, to: str | None, actor: str,
             before: str | None = None) -> ev.Event:
    return bus_event(subjects.BUG_UPDATED, ev.BugChanged(
        bug=bug, changes={"assignee": {"from": before, "to": to}}, actor_id=actor))


def commented(bug: ev.BugSnapshot, author: User, body: str = "Can't reproduce on 1.0.1",
              internal: bool = False) -> ev.Event:
    return bus_event(subjects.COMMENT_ADDED, ev.CommentAdded(
        bug=bug, comment_id=str(uuid.uuid4()), body=body, internal=internal,
        author_id=author.id))


@pytest.fixture()
def team(user: Callable[..., User], project: Callable[..., Project],
         member: Callable[..., None]) -> tuple[Project, User, User, User]:
    owner, dev, tester = user("Olivia Owner"), user("Dev"), user("Tester")
    p = project(owner)
    member(p, dev, "member")
    member(p, tester, "member")
    return p, owner, dev, tester


# ---- preferences ----------------------------------------------------------------------------

def test_preferences_default_for_every_event(client: FlaskClient,
                                             user: Callable[..., User]) -> None:
    me = user()
    resp = client.get(PREFS, headers=me.headers)
    assert resp.status_code == 200
    prefs = resp.json["data"]
    assert prefs["events"] == ["bug_assigned", "comment_added", "bug_resolved", "alert_triggered"]
    assert prefs["in_app"] == dict.fromkeys(prefs["events"], True)
    assert prefs["email"] == {"bug_assigned": True, "comment_added": True,
                              "bug_resolved": False, "alert_triggered": True}
    assert prefs["discord_dm"] == dict.fromkeys(prefs["events"], False)
    assert prefs["projects"] == {} and prefs["updated_at"] is None
    assert client.get(PREFS).status_code == 401


def test_put_merges_and_null_resets(client: FlaskClient, user: Callable[..., User]) -> None:
    me = user()
    resp = client.put(PREFS, headers=me.headers,
                      json={"email": {"comment_added": False}, "in_app": {"bug_resolved": False}})
    assert resp.status_code == 200
    assert resp.json["data"]["email"]["comment_added"] is False
    assert resp.json["data"]["email"]["bug_assigned"] is True
    assert resp.json["data"]["updated_at"].endswith("Z")
    again = client.put(PREFS, headers=me.headers, json={"email": {"comment_added": None}}).json
    assert again["data"]["email"]["comment_added"] is True  # back to the default
    assert again["data"]["in_app"]["bug_resolved"] is False  # untouched
    assert client.get(PREFS, headers=me.headers).json["data"] == again["data"]


def test_project_overrides_are_set_shown_by_slug_and_dropped(
        client: FlaskClient, team: tuple[Project, User, User, User]) -> None:
    p, _, dev, _ = team
    resp = client.put(PREFS, headers=dev.headers,
                      json={"projects": {p.slug: {"email": {"alert_triggered": False}}}})
    assert resp.status_code == 200
    assert resp.json["data"]["projects"] == {p.slug: {"email": {"alert_triggered": False}}}
    assert resp.json["data"]["email"]["alert_triggered"] is True
    dropped = client.put(PREFS, headers=dev.headers, json={"projects": {p.slug: None}})
    assert dropped.json["data"]["projects"] == {}


@pytest.mark.parametrize(("body", "field"), [
    ({"email": {"bug_exploded": True}}, "email"),
    ({"in_app": {"bug_assigned": "yes"}}, "in_app.bug_assigned"),
    ({"discord_dm": ["bug_assigned"]}, "discord_dm"),
    ({"projects": {"no-such-project": {"email": {"bug_assigned": False}}}},
     "projects.no-such-project"),
    ({"projects": {"x": {"in_app": {"nope": True}}}}, "projects.x.in_app"),
])
def test_bad_preferences_are_refused_naming_the_field(
        client: FlaskClient, user: Callable[..., User], body: dict[str, Any],
        field: str) -> None:
    me = user()
    resp = client.put(PREFS, headers=me.headers, json=body)
    assert resp.status_code == 400, resp.json
    assert field in resp.json["details"], resp.json


def test_overrides_only_for_projects_the_user_belongs_to(
        client: FlaskClient, team: tuple[Project, User, User, User],
        user: Callable[..., User]) -> None:
    p = team[0]
    stranger = user("Stranger")
    resp = client.put(PREFS, headers=stranger.headers,
                      json={"projects": {p.slug: {"email": {"bug_assigned": False}}}})
    assert resp.status_code == 400 and f"projects.{p.slug}" in resp.json["details"]


# ---- who is told what -----------------------------------------------------------------------

def test_the_new_assignee_is_notified_but_not_when_they_assign_themselves(
        client: FlaskClient, team: tuple[Project, User, User, User],
        notify: Callable[[ev.Event], None]) -> None:
    p, owner, dev, tester = team
    bug = snapshot(p, number=12, title="Crash on start", assignee_id=dev.id)
    notify(assigned(p, bug, to=dev.id, actor=owner.id))
    listed = inbox(client, dev)
    assert listed["meta"]["total"] == 1 and listed["meta"]["unread"] == 1
    note = listed["data"][0]
    assert note["event"] == "bug_assigned" and note["read"] is False
    assert note["title"] == "Bug #12 assigned to you: Crash on start"
    assert note["body"] == f"Olivia Owner assigned you bug #12 “Crash on start” in {p.name}."
    assert note["url"] == f"https://bugnet.test/api/projects/{p.slug}/bugs/{bug.id}"
    assert note["data"]["number"] == 12 and note["project"] == {
        "id": p.id, "slug": p.slug, "name": p.name}
    # Taking a bug yourself tells no one; the actor is never told of their own action.
    notify(assigned(p, snapshot(p, assignee_id=tester.id), to=tester.id, actor=tester.id))
    assert inbox(client, tester)["meta"]["total"] == 0
    assert inbox(client, owner)["meta"]["total"] == 0


def test_a_bug_created_with_an_assignee_notifies_them(
        client: FlaskClient, team: tuple[Project, User, User, User],
        notify: Callable[[ev.Event], None]) -> None:
    p, owner, dev, _ = team
    notify(bug_created(p, assignee_id=dev.id, reporter_user_id=owner.id, actor_id=owner.id))
    assert [n["event"] for n in inbox(client, dev)["data"]] == ["bug_assigned"]


def test_comments_notify_reporter_assignee_and_earlier_commenters_but_not_the_author(
        client: FlaskClient, team: tuple[Project, User, User, User],
        user: Callable[..., User], member: Callable[..., None],
        notify: Callable[[ev.Event], None]) -> None:
    p, owner, dev, tester = team
    helper = user("Helper")
    member(p, helper, "member")
    bug = snapshot(p, number=3, reporter_user_id=tester.id)
    notify(bus_event(subjects.BUG_CREATED, ev.BugChanged(bug=bug, actor_id=tester.id)))
    notify(commented(bug, helper, "Same here"))  # tells the reporter
    assert [n["event"] for n in inbox(client, tester)["data"]] == ["comment_added"]
    bug_assigned = snapshot(p, number=3, reporter_user_id=tester.id, assignee_id=dev.id,
                            bug_id=bug.id)
    notify(assigned(p, bug_assigned, to=dev.id, actor=owner.id))
    notify(commented(bug_assigned, owner, "Looking into it"))
    # The reporter, the assignee and the earlier commenter; never the author (owner).
    assert inbox(client, tester)["meta"]["total"] == 2
    assert [n["event"] for n in inbox(client, dev)["data"]] == ["comment_added", "bug_assigned"]
    note = inbox(client, helper)["data"][0]
    assert note["title"] == "New comment on bug #3: Player falls through floor"
    assert note["body"].startswith("Olivia Owner commented on bug #3") and \
        note["body"].endswith("Looking into it")
    assert inbox(client, owner)["meta"]["total"] == 0
    # The owner commented, so the owner now hears of the next comment.
    notify(commented(bug_assigned, dev, "Fixed in 1.0.2"))
    assert inbox(client, owner)["meta"]["total"] == 1


def test_internal_comments_only_reach_members_allowed_to_see_them(
        client: FlaskClient, team: tuple[Project, User, User, User], user: Callable[..., User],
        member: Callable[..., None], notify: Callable[[ev.Event], None]) -> None:
    p, owner, dev, _ = team
    outsider = user("Contractor")
    member(p, outsider, "member", permissions=["bugs.view", "comments.create"])
    bug = snapshot(p, reporter_user_id=outsider.id, assignee_id=dev.id)
    notify(commented(bug, owner, "Internal: this is the DRM again", internal=True))
    assert inbox(client, dev)["data"][0]["title"].startswith("New internal comment")
    assert inbox(client, outsider)["meta"]["total"] == 0


def test_people_who_left_the_project_are_not_notified(
        client: FlaskClient, team: tuple[Project, User, User, User],
        integrations_db: Database, notify: Callable[[ev.Event], None]) -> None:
    p, owner, dev, _ = team
    apply(integrations_db, event(subjects.MEMBER_REMOVED, project_id=p.id, user_id=dev.id,
                                 role=None, permissions=[]))
    notify(assigned(p, snapshot(p, assignee_id=dev.id), to=dev.id, actor=owner.id))
    assert inbox(client, dev)["meta"]["total"] == 0


def test_resolving_a_bug_tells_its_participants(
        client: FlaskClient, team: tuple[Project, User, User, User],
        notify: Callable[[ev.Event], None]) -> None:
    p, owner, dev, tester = team
    bug = snapshot(p, number=5, status="resolved", reporter_user_id=tester.id,
                   assignee_id=dev.id)
    notify(bus_event(subjects.BUG_RESOLVED, ev.BugChanged(
        bug=bug, changes={"status": {"from": "open", "to": "resolved"}}, actor_id=dev.id)))
    (note,) = inbox(client, tester)["data"]
    assert note["event"] == "bug_resolved" and note["body"].endswith("as resolved.")
    assert inbox(client, dev)["meta"]["total"] == 0  # the actor
    assert inbox(client, owner)["meta"]["total"] == 0  # not a participant


def test_preferences_turn_in_app_notifications_off_globally_or_per_project(
        client: FlaskClient, team: tuple[Project, User, User, User],
        project: Callable[..., Project], member: Callable[..., None],
        notify: Callable[[ev.Event], None]) -> None:
    p, owner, dev, _ = team
    other = project(owner, name="Other game")
    member(other, dev, "member")
    client.put(PREFS, headers=dev.headers, json={
        "in_app": {"bug_assigned": False},
        "projects": {other.slug: {"in_app": {"bug_assigned": True}}}})
    notify(assigned(p, snapshot(p, assignee_id=dev.id), to=dev.id, actor=owner.id))
    notify(assigned(other, snapshot(other, assignee_id=dev.id), to=dev.id, actor=owner.id))
    (note,) = inbox(client, dev)["data"]
    assert note["project"]["slug"] == other.slug


def test_a_replayed_event_notifies_once(client: FlaskClient,
                                        team: tuple[Project, User, User, User],
                                        notify: Callable[[ev.Event], None]) -> None:
    p, owner, dev, _ = team
    e = assigned(p, snapshot(p, assignee_id=dev.id), to=dev.id, actor=owner.id)
    notify(e)
    notify(e)
    assert inbox(client, dev)["meta"]["total"] == 1


def test_a_replayed_history_records_participants_without_notifying(
        client: FlaskClient, team: tuple[Project, User, User, User],
        notify: Callable[[ev.Event], None]) -> None:
    p, owner, dev, tester = team
    old = utcnow() - timedelta(days=30)
    bug = snapshot(p, reporter_user_id=tester.id, assignee_id=dev.id)
    notify(bus_event(subjects.BUG_UPDATED, ev.BugChanged(
        bug=bug, changes={"assignee": {"from": None, "to": dev.id}}, actor_id=owner.id),
        when=old))
    old_comment = commented(bug, owner, "an old comment")
    notify(ev.Event(type=old_comment.type, source="bugs", data=old_comment.data,
                    time=isoformat(old)))
    for who in (dev, tester):
        assert inbox(client, who)["meta"]["total"] == 0
    # The owner's old comment still made them a participant: today's comment tells them.
    notify(commented(bug, tester, "still happening"))
    assert inbox(client, owner)["meta"]["total"] == 1


# ---- the list and reading --------------------------------------------------------------------

def test_list_unread_first_then_newest_and_reading(
        client: FlaskClient, team: tuple[Project, User, User, User],
        notify: Callable[[ev.Event], None]) -> None:
    p, owner, dev, _ = team
    for number in (1, 2, 3):
        notify(assigned(p, snapshot(p, number=number, assignee_id=dev.id), to=dev.id,
                        actor=owner.id))
    listed = inbox(client, dev)["data"]
    assert [n["data"]["number"] for n in listed] == [3, 2, 1]
    oldest = listed[2]["id"]
    newest = listed[0]["id"]
    resp = client.post(f"/api/notifications/{newest}/read", headers=dev.headers)
    assert resp.status_code == 200 and resp.json["data"]["read"] is True
    read_at = resp.json["data"]["read_at"]
    again = client.post(f"/api/notifications/{newest}/read", headers=dev.headers)
    assert again.json["data"]["read_at"] == read_at  # reading twice changes nothing
    after = inbox(client, dev)
    assert [n["data"]["number"] for n in after["data"]] == [2, 1, 3]  # unread first
    assert after["meta"]["unread"] == 2
    assert [n["id"] for n in inbox(client, dev, "?unread=true")["data"]][-1] == oldest
    assert [n["id"] for n in inbox(client, dev, "?unread=false")["data"]] == [newest]
    page = inbox(client, dev, "?limit=1&page=2")
    assert page["meta"] == {"page": 2, "limit": 1, "total": 3, "pages": 3, "unread": 2}
    assert client.get("/api/notifications?unread=maybe",
                      headers=dev.headers).status_code == 400
    read_all = client.post("/api/notifications/read-all", headers=dev.headers)
    assert read_all.json["data"] == {"updated": 2}
    assert inbox(client, dev)["meta"]["unread"] == 0


def test_someone_elses_notification_is_404(client: FlaskClient,
                                           team: tuple[Project, User, User, User],
                                           notify: Callable[[ev.Event], None]) -> None:
    p, owner, dev, tester = team
    notify(assigned(p, snapshot(p, assignee_id=dev.id), to=dev.id, actor=owner.id))
    mine = inbox(client, dev)["data"][0]["id"]
    resp = client.post(f"/api/notifications/{mine}/read", headers=tester.headers)
    assert resp.status_code == 404 and resp.json["ok"] is False
    assert client.post("/api/notifications/nope/read", headers=dev.headers).status_code == 404
    assert client.post(f"/api/notifications/{mine}/read").status_code == 401
    assert inbox(client, dev)["data"][0]["read"] is False


def test_deleting_an_account_forgets_its_notifications_and_preferences(
        client: FlaskClient, team: tuple[Project, User, User, User],
        integrations_db: Database, notify: Callable[[ev.Event], None]) -> None:
    p, owner, dev, _ = team
    client.put(PREFS, headers=dev.headers, json={"email": {"bug_assigned": False}})
    bug = snapshot(p, assignee_id=dev.id)
    notify(assigned(p, bug, to=dev.id, actor=owner.id))
    notify(commented(bug, dev))
    notify(bus_event(subjects.USER_DELETED, ev.UserDeleted(user_id=dev.id, email=dev.email),
                     source="auth"))
    for table in ("notifications", "notification_preferences", "bug_participants"):
        assert rows(integrations_db, f"SELECT count(*) AS n FROM {table} WHERE user_id = :u",
                    u=dev.id)[0]["n"] == 0


def test_deleting_a_bug_forgets_its_participants(
        team: tuple[Project, User, User, User], integrations_db: Database,
        notify: Callable[[ev.Event], None]) -> None:
    p, owner, dev, _ = team
    bug = snapshot(p, reporter_user_id=owner.id)
    notify(commented(bug, dev))
    assert rows(integrations_db, "SELECT count(*) AS n FROM bug_participants")[0]["n"] == 1
    notify(bus_event(subjects.BUG_DELETED, ev.BugChanged(bug=bug, actor_id=owner.id)))
    assert rows(integrations_db, "SELECT count(*) AS n FROM bug_participants")[0]["n"] == 0
