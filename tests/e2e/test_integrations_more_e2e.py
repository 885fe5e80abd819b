"""More integrations through Envoy: git issues, Steam reviews (test_git_*/test_steam_*), alerts
and notifications (test_alert_*/test_notification_*). One file: one stack start for all."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from e2e.support import auth, signup, wait_for
from fakes.base import Answer
from fakes.github import FakeGitHub
from fakes.gitlab import FakeGitLab
from fakes.steam import FakeSteam
from fakes.steam import review as steam_review

from bugnet_stack import Stack

# ---- git (GitHub / GitLab issues) and Steam reviews ----------------------------------------
# The e2e stack's INTEGRATIONS_GITHUB_API_URL and INTEGRATIONS_STEAM_STORE_URL point at ports
# reserved in tests/e2e/conftest.py; the fakes below listen there. GitLab is reached through
# the integration's own `base_url` (127.0.0.0/8 is allowlisted in the e2e stack).

GIT_TOKEN = "ghp_e2e" + "x" * 30 + "Tk42"


_git_wait = functools.partial(wait_for, timeout=60.0, step=0.3)


def _git_port(stack: Stack, variable: str) -> int:
    port = urlsplit(stack.extra_env[variable]).port
    assert port is not None
    return port


@pytest.fixture()
def git_fake_github(stack: Stack) -> Iterator[FakeGitHub]:
    fake = FakeGitHub(token=GIT_TOKEN, repos=["studio/space-game"],
                      port=_git_port(stack, "INTEGRATIONS_GITHUB_API_URL"))
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture()
def steam_fake(stack: Stack) -> Iterator[FakeSteam]:
    fake = FakeSteam(port=_git_port(stack, "INTEGRATIONS_STEAM_STORE_URL"))
    fake.start()
    yield fake
    fake.stop()


def _git_project(new_client: Callable[..., httpx.Client], token: str, name: str) -> str:
    created = new_client().post("/projects", json={"name": name}, headers=auth(token))
    assert created.status_code == 201, created.text
    slug: str = created.json()["data"]["slug"]
    # integrations learns of the project from bugs' events (eventually); each poll from a
    # fresh address so that waiting never spends the test's rate-limit budget
    _git_wait(lambda: new_client().get(f"/projects/{slug}/integrations/git", headers=auth(token))
              .json().get("error") != "Project not found", what="project known to integrations")
    return slug


def _git_first_issue(new_client: Callable[..., httpx.Client], path: str,
                     token: str) -> httpx.Response:
    """POST git-issue once the bug has reached the integrations read model (404 until then)."""
    def attempt() -> httpx.Response | None:
        resp = new_client().post(path, headers=auth(token))
        return None if resp.status_code == 404 else resp

    result: httpx.Response = _git_wait(attempt, what="bug known to integrations")
    return result


def test_git_issue_from_a_bug_through_the_gateway(
        new_client: Callable[..., httpx.Client], git_fake_github: FakeGitHub) -> None:
    api = new_client()
    token, _, _ = signup(api)
    slug = _git_project(new_client, token, "Git Game")
    git = f"/projects/{slug}/integrations/git"

    bad = api.post(git, headers=auth(token),
                   json={"provider": "bitbucket", "repository": "a/b", "token": "t0ken"})
    assert bad.status_code == 400 and "provider" in bad.json()["details"]
    missing = api.post(git, headers=auth(token), json={"provider": "github", "token": "t0ken"})
    assert missing.status_code == 400 and "repository" in missing.json()["details"]
    saved = api.post(git, headers=auth(token), json={
        "provider": "github", "repository": "studio/space-game", "token": GIT_TOKEN})
    assert saved.status_code == 201, saved.text
    assert saved.json()["data"]["has_token"] is True and GIT_TOKEN not in saved.text
    got = new_client("/api/v1").get(git, headers=auth(token))
    assert got.status_code == 200 and GIT_TOKEN not in got.text

    bug = api.post(f"/projects/{slug}/bugs", headers=auth(token), json={
        "title": "Crash when docking", "category": "crash", "priority": "critical",
        "platform": "Windows", "game_version": "2.0.1"})
    assert bug.status_code == 201, bug.text
    bug_id = bug.json()["data"]["id"]
    issue_path = f"/projects/{slug}/bugs/{bug_id}/git-issue"
    # the bug reaches the integrations read model through the bus
    resp = _git_first_issue(new_client, issue_path, token)
    assert resp.status_code == 201, resp.text
    assert resp.json()["data"]["url"] == "https://github.com/studio/space-game/issues/1"
    assert resp.json()["data"]["number"] == 1
    [req] = git_fake_github.requests
    assert req.path == "/repos/studio/space-game/issues"
    assert req.headers["authorization"] == f"Bearer {GIT_TOKEN}"
    assert req.headers["accept"] == "application/vnd.github+json"
    sent = req.json()
    assert sent["title"] == "Crash when docking"
    assert sent["labels"] == ["crash", "priority: critical"]
    assert f"/api/projects/{slug}/bugs/{bug_id})" in sent["body"]

    again = api.post(issue_path, headers=auth(token))
    assert again.status_code == 409 and again.json()["details"]["number"] == 1
    assert api.get(issue_path, headers=auth(token)).json()["data"]["number"] == 1
    assert len(git_fake_github.requests) == 1


def test_git_provider_failures_are_clear_502s_through_the_gateway(
        new_client: Callable[..., httpx.Client]) -> None:
    api = new_client()
    token, _, _ = signup(api)
    slug = _git_project(new_client, token, "GitLab Game")
    with FakeGitLab(token="glpat-right0000", projects=["studio/space-game"]) as gitlab:
        saved = api.post(f"/projects/{slug}/integrations/git", headers=auth(token), json={
            "provider": "gitlab", "repository": "studio/space-game", "token": "glpat-wrong000",
            "base_url": gitlab.url})
        assert saved.status_code == 201, saved.text
        bug = api.post(f"/projects/{slug}/bugs", headers=auth(token),
                       json={"title": "Menu freezes", "category": "ui"})
        issue_path = f"/projects/{slug}/bugs/{bug.json()['data']['id']}/git-issue"
        resp = _git_first_issue(new_client, issue_path, token)
        assert resp.status_code == 502, resp.text
        assert resp.json()["error"] == "GitLab answered 401: check the token"
        assert gitlab.requests[0].path == "/api/v4/projects/studio%2Fspace-game/issues"
        # nothing was stored: with the right token the issue is created
        api.post(f"/projects/{slug}/integrations/git", headers=auth(token), json={
            "provider": "gitlab", "repository": "studio/space-game", "token": "glpat-right0000",
            "base_url": gitlab.url})
        ok = api.post(issue_path, headers=auth(token))
        assert ok.status_code == 201, ok.text
        assert ok.json()["data"]["url"] == f"{gitlab.url}/studio/space-game/-/issues/1"


def test_steam_reviews_sync_and_dashboard_through_the_gateway(
        new_client: Callable[..., httpx.Client], steam_fake: FakeSteam) -> None:
    api = new_client()
    token, _, _ = signup(api)
    slug = _git_project(new_client, token, "Steam Game")
    steam = f"/projects/{slug}/integrations/steam"
    bad = api.post(steam, headers=auth(token), json={"app_id": "abc"})
    assert bad.status_code == 400 and "app_id" in bad.json()["details"]
    saved = api.post(steam, headers=auth(token),
                     json={"app_id": 480, "api_key": "ABCDEF0123456789ABCDEF0123456789"})
    assert saved.status_code == 201, saved.text
    assert saved.json()["data"]["has_api_key"] is True and "ABCDEF0123456789" not in saved.text

    now = datetime.now(UTC)
    steam_fake.add(480, *[steam_review(f"Fun {i}", at=now - timedelta(hours=i + 1))
                          for i in range(120)])
    steam_fake.add(480, steam_review("Crashes every time I load a save", voted_up=False,
                                     at=now - timedelta(minutes=5)))
    # a no-body POST, without a Content-Type
    first = api.post(f"{steam}/sync", headers=auth(token))
    assert first.status_code == 200, first.text
    assert (first.json()["data"]["imported"], first.json()["data"]["skipped"]) == (121, 0)
    again = api.post(f"{steam}/sync", headers=auth(token))
    assert again.json()["data"]["imported"] == 0
    assert steam_fake.requests[0].query["cursor"] == "*"
    assert steam_fake.requests[0].path == "/appreviews/480"

    board = api.get(f"{steam}/dashboard", headers=auth(token), params={"days": 14})
    assert board.status_code == 200, board.text
    d = board.json()["data"]
    assert d["reviews"]["total"] == 121 and d["reviews"]["negative"] == 1
    assert d["reviews"]["positive_share"] == 99.17
    assert len(d["trend"]) == 14
    assert d["recent_negative"][0]["review"] == "Crashes every time I load a save"
    assert d["bug_mentions"]["terms"] == {"crash": 1}

    steam_fake.script(Answer(200, b"<html>Steam is down</html>", content_type="text/html"))
    steam_fake.add(480, steam_review("new"))
    down = api.post(f"{steam}/sync", headers=auth(token))
    assert down.status_code == 502 and down.json()["ok"] is False
    assert "unexpected body" in down.json()["error"]


# ---- alerts and notifications -----------------------------------------------------------------
# The e2e stack has no SMTP server (email is covered by tests/integration/integrations with
# aiosmtpd); alerts and notifications are seen here through the in-app list.


_alert_wait = functools.partial(wait_for, timeout=60.0, step=0.3)


def _alert_team(new_client: Callable[..., httpx.Client], name: str
                ) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A project with its owner and a member who joined through an invitation, once the
    integrations service knows both; (slug, owner, member) with `token`, `id`, `client`."""
    owner_api, member_api = new_client(), new_client()
    owner_token, owner_user, _ = signup(owner_api)
    created = owner_api.post("/projects", json={"name": name}, headers=auth(owner_token))
    assert created.status_code == 201, created.text
    slug: str = created.json()["data"]["slug"]
    member_token, member_user, member_email = signup(member_api)
    invited = owner_api.post(f"/projects/{slug}/team/invitations", headers=auth(owner_token),
                             json={"email": member_email, "role": "member"})
    assert invited.status_code == 201, invited.text
    accepted = member_api.post(f"/invitations/{invited.json()['data']['token']}/accept",
                               headers=auth(member_token))
    assert accepted.status_code in (200, 201), accepted.text
    # Both reach integrations' read models through the bus: the owner may manage alerts, the
    # member is refused (403) instead of not finding the project (404).
    _alert_wait(lambda: new_client().get(f"/projects/{slug}/alerts", headers=auth(owner_token))
                .status_code == 200, what="project known to integrations")
    _alert_wait(lambda: new_client().get(f"/projects/{slug}/alerts", headers=auth(member_token))
                .status_code == 403, what="member known to integrations")
    return (slug, {"token": owner_token, "id": owner_user["id"], "client": owner_api},
            {"token": member_token, "id": member_user["id"], "client": member_api})


def _alert_inbox(new_client: Callable[..., httpx.Client], token: str, n: int,
                 what: str) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        resp = new_client().get("/notifications", headers=auth(token))
        assert resp.status_code == 200, resp.text
        data: list[dict[str, Any]] = resp.json()["data"]
        return data if len(data) >= n else None

    return _alert_wait(check, what=what)  # type: ignore[no-any-return]


def test_alert_rule_fires_on_a_new_bug_through_the_gateway(
        new_client: Callable[..., httpx.Client]) -> None:
    slug, owner, dev = _alert_team(new_client, "Alert Game")
    api, headers = owner["client"], auth(owner["token"])
    alerts = f"/projects/{slug}/alerts"

    bad = api.post(alerts, headers=headers, json={"name": "x", "condition": "on_fire"})
    assert bad.status_code == 400 and "condition" in bad.json()["details"]
    bad = api.post(alerts, headers=headers, json={"name": "x", "condition": "crash_free_below",
                                                  "threshold": 120})
    assert bad.status_code == 400 and "threshold" in bad.json()["details"]
    denied = dev["client"].post(alerts, headers=auth(dev["token"]),
                                json={"name": "x", "condition": "new_bug"})
    assert denied.status_code == 403
    created = api.post(alerts, headers=headers, json={
        "name": "Critical bugs", "condition": "new_bug", "window_minutes": 30,
        "channels": ["in_app", "email"], "filters": {"priority": ["critical"]}})
    assert created.status_code == 201, created.text
    rule = created.json()["data"]
    assert new_client("/api/v1").get(f"{alerts}/{rule['id']}", headers=headers).json()[
        "data"] == rule

    for title, priority in (("Typo in menu", "low"), ("Crash when docking", "critical"),
                            ("Crash when undocking", "critical")):
        resp = api.post(f"/projects/{slug}/bugs", headers=headers,
                        json={"title": title, "category": "crash", "priority": priority})
        assert resp.status_code == 201, resp.text

    # The owner filed the bugs (and is not told of their own); the member is, once: the
    # second critical bug falls in the rule's 30-minute cooldown.
    firings = _alert_wait(lambda: new_client().get(f"{alerts}/{rule['id']}/firings",
                                                   headers=headers).json()["data"],
                          what="a firing")
    (note,) = _alert_inbox(new_client, dev["token"], 1, "the member's alert notification")
    assert note["event"] == "alert_triggered" and note["title"] == "Alert “Critical bugs” fired"
    assert "Crash when docking" in note["body"] and note["project"]["slug"] == slug
    _alert_wait(lambda: new_client().get(f"{alerts}/{rule['id']}/firings", headers=headers)
                .json()["data"][0]["suppressed"] == 1, what="the second bug suppressed")
    assert len(firings) == 1 and firings[0]["details"]["bug"]["title"] == "Crash when docking"
    assert api.get("/notifications", headers=headers).json()["meta"]["total"] == 0

    changed = api.patch(f"{alerts}/{rule['id']}", headers=headers, json={"enabled": False})
    assert changed.status_code == 200 and changed.json()["data"]["enabled"] is False
    deleted = api.delete(f"{alerts}/{rule['id']}", headers=headers)
    assert deleted.status_code == 200 and deleted.json()["data"]["id"] == rule["id"]
    assert api.get(f"{alerts}/{rule['id']}", headers=headers).status_code == 404


def test_notification_of_assignment_and_comments_through_the_gateway(
        new_client: Callable[..., httpx.Client]) -> None:
    slug, owner, dev = _alert_team(new_client, "Notify Game")
    api, headers = owner["client"], auth(owner["token"])
    dev_api, dev_headers = dev["client"], auth(dev["token"])

    prefs = dev_api.get("/notifications/preferences", headers=dev_headers)
    assert prefs.status_code == 200 and prefs.json()["data"]["in_app"]["bug_assigned"] is True
    bad = dev_api.put("/notifications/preferences", headers=dev_headers,
                      json={"in_app": {"bug_exploded": True}})
    assert bad.status_code == 400 and "in_app" in bad.json()["details"]
    # The member turns comment notifications off for this project only.
    put = new_client("/api/v1").put("/notifications/preferences", headers=dev_headers, json={
        "projects": {slug: {"in_app": {"comment_added": False}}}})
    assert put.status_code == 200, put.text
    assert put.json()["data"]["projects"] == {slug: {"in_app": {"comment_added": False}}}

    bug = api.post(f"/projects/{slug}/bugs", headers=headers,
                   json={"title": "Audio stutters", "category": "audio"})
    assert bug.status_code == 201, bug.text
    bug_id = bug.json()["data"]["id"]
    assigned = api.patch(f"/projects/{slug}/bugs/{bug_id}", headers=headers,
                         json={"assignee": dev["id"]})
    assert assigned.status_code == 200, assigned.text
    (note,) = _alert_inbox(new_client, dev["token"], 1, "the assignment notification")
    assert note["event"] == "bug_assigned" and note["read"] is False
    assert note["title"] == f"Bug #{bug.json()['data']['number']} assigned to you: Audio stutters"

    # The member comments: the owner (the reporter) is told; the member is not (the author).
    commented = dev_api.post(f"/projects/{slug}/bugs/{bug_id}/comments", headers=dev_headers,
                             json={"body": "Only with Bluetooth headsets"})
    assert commented.status_code == 201, commented.text
    (owner_note,) = _alert_inbox(new_client, owner["token"], 1, "the comment notification")
    assert owner_note["event"] == "comment_added"
    assert "Only with Bluetooth headsets" in owner_note["body"]
    # The owner's reply does not reach the member, whose preference turned it off here. Events
    # of a bug are handled in order: once a later re-assignment arrived, the reply was handled.
    reply = api.post(f"/projects/{slug}/bugs/{bug_id}/comments", headers=headers,
                     json={"body": "Thanks, reproduced"})
    assert reply.status_code == 201, reply.text
    for assignee in (None, dev["id"]):
        assert api.patch(f"/projects/{slug}/bugs/{bug_id}", headers=headers,
                         json={"assignee": assignee}).status_code == 200
    notes = _alert_inbox(new_client, dev["token"], 2, "the second assignment notification")
    assert [n["event"] for n in notes] == ["bug_assigned", "bug_assigned"]

    assert api.post(f"/notifications/{note['id']}/read", headers=headers).status_code == 404
    read = dev_api.post(f"/notifications/{note['id']}/read", headers=dev_headers)
    assert read.status_code == 200 and read.json()["data"]["read"] is True
    listed = dev_api.get("/notifications", headers=dev_headers).json()
    assert listed["meta"]["total"] == 2 and listed["meta"]["unread"] == 1
    assert listed["data"][1]["id"] == note["id"]  # unread first
    assert dev_api.get("/notifications").status_code == 401
