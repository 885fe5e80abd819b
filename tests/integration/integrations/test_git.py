"""GitHub/GitLab settings and issues from bugs, against local fake GitHub and GitLab servers
(real HTTP on 127.0.0.1), through the api on a real database."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import nats as nats_client
import pytest
from fakes.base import Answer
from fakes.github import FakeGitHub
from fakes.gitlab import FakeGitLab
from flask.testing import FlaskClient
from integration.integrations.support import Project, User, apply, event
from sqlmodel import select

from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event
from bugnet_common.bus.worker import Worker
from bugnet_common.db import Database
from integrations import crypto
from integrations.git import handlers as git_handlers
from integrations.git.models import GitBugRef, GitIntegration, GitIssue
from integrations.settings import IntegrationsSettings
from servers import NatsInfo

MakeUser = Callable[..., User]
MakeProject = Callable[..., Project]
GH_TOKEN = "ghp_" + "a" * 32 + "Zq9x"
GL_TOKEN = "glpat-" + "b" * 20 + "K2m7"


@pytest.fixture()
def github(integrations_settings: IntegrationsSettings) -> Iterator[FakeGitHub]:
    """A fake GitHub API at settings.github_api_url, knowing studio/space-game."""
    fake = FakeGitHub(token=GH_TOKEN, repos=["studio/space-game"])
    fake.start()
    saved = integrations_settings.github_api_url
    integrations_settings.github_api_url = fake.url
    yield fake
    integrations_settings.github_api_url = saved
    fake.stop()


@pytest.fixture()
def gitlab() -> Iterator[FakeGitLab]:
    with FakeGitLab(token=GL_TOKEN, projects=["studio/games/space-game"]) as fake:
        assert isinstance(fake, FakeGitLab)
        yield fake


def bug_snapshot(p: Project, **fields: Any) -> dict[str, Any]:
    bug_id = fields.pop("id", None) or str(uuid.uuid4())
    snap = {"id": bug_id, "project_id": p.id, "project_slug": p.slug, "number": 7,
            "title": "Crash when opening the map", "category": "crash", "priority": "high",
            "status": "open", "source": "sdk", "is_public": False, "platform": "Windows",
            "game_version": "1.4.2", "fingerprint": None, "assignee_id": None,
            "reporter_user_id": None, "created_at": "2026-11-20T10:00:00Z", "resolved_at": None,
            "url": f"/api/projects/{p.slug}/bugs/{bug_id}"}
    snap.update(fields)
    return snap


def apply_bug(db: Database, subject: str, snap: dict[str, Any], time: str | None = None) -> None:
    ev = event(subject, bug=snap, changes={}, actor_id=None)
    if time is not None:
        ev = type(ev)(type=ev.type, source=ev.source, data=ev.data, time=time)
    with db.begin() as session:
        git_handlers.dispatch(session=session, event=ev)


def make_bug(db: Database, p: Project, **fields: Any) -> dict[str, Any]:
    snap = bug_snapshot(p, **fields)
    apply_bug(db, subjects.BUG_CREATED, snap)
    return snap


def git_path(p: Project) -> str:
    return f"/api/projects/{p.slug}/integrations/git"


def issue_path(p: Project, bug_id: str) -> str:
    return f"/api/projects/{p.slug}/bugs/{bug_id}/git-issue"


def configure(client: FlaskClient, owner: User, p: Project, **body: Any) -> dict[str, Any]:
    body = {"provider": "github", "repository": "studio/space-game", "token": GH_TOKEN, **body}
    resp = client.post(git_path(p), json=body, headers=owner.headers)
    assert resp.status_code in (200, 201), resp.json
    return resp.json["data"]


# ---- settings -------------------------------------------------------------------------------

def test_owner_connects_github_and_the_token_is_stored_encrypted_never_returned(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        integrations_settings: IntegrationsSettings) -> None:
    owner = user("Owner")
    p = project(owner)
    resp = client.post(git_path(p), headers=owner.headers,
                       json={"provider": "github", "repository": "studio/space-game",
                             "token": GH_TOKEN})
    assert resp.status_code == 201, resp.json
    data = resp.json["data"]
    assert data["provider"] == "github" and data["repository"] == "studio/space-game"
    assert data["has_token"] is True and data["token_hint"] == "…Zq9x"
    assert data["base_url"] is None and "token" not in data
    assert GH_TOKEN not in resp.get_data(as_text=True)
    got = client.get(git_path(p), headers=owner.headers)
    assert got.status_code == 200 and got.json["data"] == data
    assert GH_TOKEN not in got.get_data(as_text=True)
    with integrations_db.session() as session:
        row = session.exec(select(GitIntegration)).one()
    assert GH_TOKEN not in row.token_encrypted
    assert crypto.decrypt(integrations_settings.secret(), row.token_encrypted) == GH_TOKEN


def test_posting_again_replaces_the_settings_and_delete_removes_them(
        client: FlaskClient, user: MakeUser, project: MakeProject, gitlab: FakeGitLab) -> None:
    owner = user("Owner")
    p = project(owner)
    configure(client, owner, p)
    resp = client.post(git_path(p), headers=owner.headers,
                       json={"provider": "gitlab", "repository": "studio/games/space-game",
                             "token": GL_TOKEN, "base_url": gitlab.url + "/"})
    assert resp.status_code == 200, resp.json
    assert resp.json["data"]["provider"] == "gitlab"
    assert resp.json["data"]["base_url"] == gitlab.url
    assert resp.json["data"]["token_hint"] == "…K2m7"
    deleted = client.delete(git_path(p), headers=owner.headers)
    assert deleted.status_code == 200 and deleted.json["data"]["provider"] == "gitlab"
    assert client.get(git_path(p), headers=owner.headers).status_code == 404
    assert client.delete(git_path(p), headers=owner.headers).status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"provider": "bitbucket", "repository": "a/b", "token": "t0ken"}, "provider"),
    ({"provider": "github", "token": "t0ken"}, "repository"),
    ({"provider": "github", "repository": "", "token": "t0ken"}, "repository"),
    ({"provider": "github", "repository": "no-slash", "token": "t0ken"}, "repository"),
    ({"provider": "github", "repository": "a/b/c", "token": "t0ken"}, "repository"),
    ({"provider": "gitlab", "repository": "lonely", "token": "t0ken"}, "repository"),
    ({"provider": "github", "repository": "a/b"}, "token"),
    ({"provider": "github", "repository": "a/b", "token": "has space"}, "token"),
    ({"provider": "github", "repository": "a/b", "token": 12345}, "token"),
    ({"provider": "gitlab", "repository": "a/b", "token": "t0ken", "base_url": "gopher://x"},
     "base_url"),
])
def test_bad_git_settings_are_400_naming_the_field(
        client: FlaskClient, user: MakeUser, project: MakeProject, body: dict[str, Any],
        field: str) -> None:
    owner = user("Owner")
    p = project(owner)
    resp = client.post(git_path(p), json=body, headers=owner.headers)
    assert resp.status_code == 400, resp.json
    assert resp.json["ok"] is False and field in resp.json["details"], resp.json
    assert client.get(git_path(p), headers=owner.headers).status_code == 404


def test_base_url_on_a_private_address_is_refused(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        strict_targets: IntegrationsSettings) -> None:
    owner = user("Owner")
    p = project(owner)
    resp = client.post(git_path(p), headers=owner.headers,
                       json={"provider": "gitlab", "repository": "a/b", "token": "t0ken",
                             "base_url": "http://127.0.0.1:9/"})
    assert resp.status_code == 400
    assert "loopback" in resp.json["details"]["base_url"]


def test_git_settings_need_integrations_manage_and_hide_the_project_from_outsiders(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        member: Callable[..., None]) -> None:
    owner, dev, outsider = user("Owner"), user("Dev"), user("Outsider")
    p = project(owner)
    member(p, dev, "member")
    configure(client, owner, p)
    assert client.get(git_path(p), headers=dev.headers).status_code == 403
    assert client.post(git_path(p), headers=dev.headers,
                       json={"provider": "github", "repository": "a/b",
                             "token": "x1234567"}).status_code == 403
    assert client.delete(git_path(p), headers=dev.headers).status_code == 403
    assert client.get(git_path(p), headers=outsider.headers).status_code == 404
    assert client.get(git_path(p)).status_code == 401


# ---- issues ---------------------------------------------------------------------------------

def test_github_issue_is_created_with_the_bug_fields_link_and_labels(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        github: FakeGitHub, member: Callable[..., None]) -> None:
    owner, dev = user("Owner"), user("Dev")
    p = project(owner, name="Space | Game")
    member(p, dev, "member")  # members hold bugs.edit
    configure(client, owner, p)
    bug = make_bug(integrations_db, p, title="Crash  when @everyone opens the map",
                   game_version="1.4.2 @qa-team")

    resp = client.post(issue_path(p, bug["id"]), headers=dev.headers)
    assert resp.status_code == 201, resp.json
    data = resp.json["data"]
    assert data["url"] == "https://github.com/studio/space-game/issues/1"
    assert data["number"] == 1 and data["provider"] == "github" and data["bug_id"] == bug["id"]

    [req] = github.requests
    assert req.method == "POST" and req.path == "/repos/studio/space-game/issues"
    assert req.headers["authorization"] == f"Bearer {GH_TOKEN}"
    assert req.headers["accept"] == "application/vnd.github+json"
    sent = req.json()
    assert sent["title"] == "Crash when @everyone opens the map"
    assert sent["labels"] == ["crash", "priority: high"]
    body = sent["body"]
    for text in ("#7", "| Category | crash |", "| Priority | high |", "| Platform | Windows |",
                 "| Game version | 1.4.2 &#64;qa-team |", "Space \\| Game",
                 f"(https://bugnet.test/api/projects/{p.slug}/bugs/{bug['id']})"):
        assert text in body, (text, body)
    assert "@" not in body  # no mentions pinging people from user-controlled fields

    got = client.get(issue_path(p, bug["id"]), headers=dev.headers)
    assert got.status_code == 200 and got.json["data"]["url"] == data["url"]


def test_a_second_issue_for_the_same_bug_is_409_with_the_existing_link(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        github: FakeGitHub) -> None:
    owner = user("Owner")
    p = project(owner)
    configure(client, owner, p)
    bug = make_bug(integrations_db, p)
    first = client.post(issue_path(p, bug["id"]), headers=owner.headers)
    assert first.status_code == 201
    again = client.post(issue_path(p, bug["id"]), headers=owner.headers, json={})
    assert again.status_code == 409
    assert again.json["details"] == {"url": first.json["data"]["url"], "number": 1}
    assert first.json["data"]["url"] in again.json["error"]
    assert len(github.requests) == 1


def test_concurrent_requests_create_one_issue(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        github: FakeGitHub, integrations_app: Any) -> None:
    owner = user("Owner")
    p = project(owner)
    configure(client, owner, p)
    bug = make_bug(integrations_db, p)
    github.delay = 0.5
    statuses: list[int] = []

    def post() -> None:
        resp = integrations_app.test_client().post(issue_path(p, bug["id"]),
                                                   headers=owner.headers)
        statuses.append(resp.status_code)

    threads = [threading.Thread(target=post) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 409, 409]
    assert len(github.requests) == 1


def test_issue_for_unknown_or_foreign_bug_is_404(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        github: FakeGitHub) -> None:
    owner = user("Owner")
    p, other = project(owner), project(owner, name="Other")
    configure(client, owner, p)
    foreign = make_bug(integrations_db, other)
    for bug_id in (str(uuid.uuid4()), foreign["id"], "not-a-uuid"):
        resp = client.post(issue_path(p, bug_id), headers=owner.headers)
        assert resp.status_code == 404 and resp.json["error"] == "Bug not found"
    assert github.requests == []


def test_issue_needs_bugs_edit_and_a_git_integration(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        member: Callable[..., None], github: FakeGitHub) -> None:
    owner, viewer = user("Owner"), user("Viewer")
    p = project(owner)
    member(p, viewer, "member", permissions=["bugs.view"])
    bug = make_bug(integrations_db, p)
    assert client.post(issue_path(p, bug["id"]), headers=viewer.headers).status_code == 403
    resp = client.post(issue_path(p, bug["id"]), headers=owner.headers)
    assert resp.status_code == 409 and "No git integration" in resp.json["error"]
    assert client.get(issue_path(p, bug["id"]), headers=owner.headers).status_code == 404


@pytest.mark.parametrize(("setup", "status", "message"), [
    ("bad_token", 401, "GitHub answered 401: check the token"),
    ("unknown_repo", 404, "GitHub answered 404: check the repository 'studio/other-game'"),
    ("server_error", 500, "GitHub answered 500"),
    ("garbage", 201, "GitHub answered 201 without an issue"),
    ("rate_limited", 403, "GitHub answered 403: rate limit exceeded"),
])
def test_provider_failures_are_502_and_store_nothing(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        github: FakeGitHub, setup: str, status: int, message: str) -> None:
    owner = user("Owner")
    p = project(owner)
    if setup == "bad_token":
        configure(client, owner, p, token="ghp_wrongtoken00")
    elif setup == "unknown_repo":
        configure(client, owner, p, repository="studio/other-game")
    else:
        configure(client, owner, p)
    if setup == "server_error":
        github.script(Answer.of(500, {"message": "Server Error"}))
    elif setup == "garbage":
        github.script(Answer(201, b"<html>oops</html>", content_type="text/html"))
    elif setup == "rate_limited":
        github.script(Answer.of(403, {"message": "API rate limit exceeded"},
                                **{"X-RateLimit-Remaining": "0"}))
    bug = make_bug(integrations_db, p)

    resp = client.post(issue_path(p, bug["id"]), headers=owner.headers)
    assert resp.status_code == 502, resp.json
    assert resp.json["ok"] is False and resp.json["code"] == "bad_gateway"
    assert resp.json["error"].startswith(message), resp.json
    assert resp.json["details"] == {"provider_status": status}
    assert len(github.requests) == 1
    with integrations_db.session() as session:
        assert session.exec(select(GitIssue)).all() == []
    assert client.get(issue_path(p, bug["id"]), headers=owner.headers).status_code == 404


def test_after_a_failure_a_retry_creates_the_issue(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        github: FakeGitHub) -> None:
    owner = user("Owner")
    p = project(owner)
    configure(client, owner, p)
    github.script(Answer.of(502, {"message": "Bad gateway"}))
    bug = make_bug(integrations_db, p)
    assert client.post(issue_path(p, bug["id"]), headers=owner.headers).status_code == 502
    resp = client.post(issue_path(p, bug["id"]), headers=owner.headers)
    assert resp.status_code == 201 and resp.json["data"]["number"] == 1


def test_unreachable_provider_is_502(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        integrations_settings: IntegrationsSettings) -> None:
    owner = user("Owner")
    p = project(owner)
    fake = FakeGitHub(token=GH_TOKEN, repos=["a/b"]).start()
    url = fake.url
    fake.stop()  # nothing listens there any more
    configure(client, owner, p, provider="gitlab", repository="a/b", base_url=url)
    bug = make_bug(integrations_db, p)
    resp = client.post(issue_path(p, bug["id"]), headers=owner.headers)
    assert resp.status_code == 502
    assert resp.json["error"].startswith("GitLab could not be reached at 127.0.0.1")


def test_gitlab_issue_by_path_on_a_self_hosted_instance(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        gitlab: FakeGitLab) -> None:
    owner = user("Owner")
    p = project(owner)
    configure(client, owner, p, provider="gitlab", repository="studio/games/space-game",
              token=GL_TOKEN, base_url=gitlab.url)
    bug = make_bug(integrations_db, p, category="audio", priority="low")
    resp = client.post(issue_path(p, bug["id"]), headers=owner.headers)
    assert resp.status_code == 201, resp.json
    assert resp.json["data"]["url"] == f"{gitlab.url}/studio/games/space-game/-/issues/1"
    assert resp.json["data"]["number"] == 1
    [req] = gitlab.requests
    assert req.path == "/api/v4/projects/studio%2Fgames%2Fspace-game/issues"
    assert req.headers["private-token"] == GL_TOKEN and "authorization" not in req.headers
    sent = req.json()
    assert sent["title"] == "Crash when opening the map"
    assert sent["labels"] == "audio,priority: low"
    assert "| Category | audio |" in sent["description"]


def test_gitlab_issue_by_numeric_id_on_the_default_instance(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        gitlab: FakeGitLab, integrations_settings: IntegrationsSettings) -> None:
    owner = user("Owner")
    p = project(owner)
    saved = integrations_settings.gitlab_url
    integrations_settings.gitlab_url = gitlab.url + "/api/v4"
    try:
        configure(client, owner, p, provider="gitlab", repository="101", token=GL_TOKEN)
        bug = make_bug(integrations_db, p)
        resp = client.post(issue_path(p, bug["id"]), headers=owner.headers)
    finally:
        integrations_settings.gitlab_url = saved
    assert resp.status_code == 201, resp.json
    assert gitlab.requests[0].path == "/api/v4/projects/101/issues"


def test_gitlab_wrong_token_and_unknown_project_are_clear_502s(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        gitlab: FakeGitLab) -> None:
    owner = user("Owner")
    p = project(owner)
    bug = make_bug(integrations_db, p)
    configure(client, owner, p, provider="gitlab", repository="studio/games/space-game",
              token="glpat-wrong000", base_url=gitlab.url)
    resp = client.post(issue_path(p, bug["id"]), headers=owner.headers)
    assert (resp.status_code, resp.json["error"]) == (502, "GitLab answered 401: check the token")
    configure(client, owner, p, provider="gitlab", repository="studio/nope", token=GL_TOKEN,
              base_url=gitlab.url)
    resp = client.post(issue_path(p, bug["id"]), headers=owner.headers)
    assert resp.status_code == 502 and "GitLab answered 404" in resp.json["error"]


# ---- the bugs read model --------------------------------------------------------------------

def test_bug_read_model_follows_events_in_order_and_forgets_deleted_bugs(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        github: FakeGitHub) -> None:
    owner = user("Owner")
    p = project(owner)
    snap = make_bug(integrations_db, p)
    apply_bug(integrations_db, subjects.BUG_UPDATED, {**snap, "priority": "critical"},
              time="2099-01-01T00:00:02Z")
    # an older, redelivered update does not win
    apply_bug(integrations_db, subjects.BUG_UPDATED, {**snap, "priority": "low"},
              time="2099-01-01T00:00:01Z")
    with integrations_db.session() as session:
        assert session.get(GitBugRef, snap["id"]).priority == "critical"  # type: ignore[union-attr]

    configure(client, owner, p)
    assert client.post(issue_path(p, snap["id"]), headers=owner.headers).status_code == 201
    apply_bug(integrations_db, subjects.BUG_DELETED, snap, time="2099-01-01T00:00:03Z")
    apply_bug(integrations_db, subjects.BUG_UPDATED, snap, time="2099-01-01T00:00:04Z")
    with integrations_db.session() as session:
        assert session.get(GitBugRef, snap["id"]) is None
        assert session.exec(select(GitIssue)).all() == []
    assert client.post(issue_path(p, snap["id"]), headers=owner.headers).status_code == 404


def test_project_deletion_removes_git_settings_bugs_and_links(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        github: FakeGitHub) -> None:
    owner = user("Owner")
    p = project(owner)
    configure(client, owner, p)
    snap = make_bug(integrations_db, p)
    assert client.post(issue_path(p, snap["id"]), headers=owner.headers).status_code == 201
    apply(integrations_db, event(subjects.PROJECT_DELETED, project_id=p.id, slug=p.slug))
    with integrations_db.session() as session:
        for table in (GitIntegration, GitBugRef, GitIssue):
            assert session.exec(select(table)).all() == []
    # a late bug event of the deleted project is ignored, not retried forever
    apply_bug(integrations_db, subjects.BUG_UPDATED, snap)


def test_bug_events_on_the_bus_feed_the_read_model_through_the_worker(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        github: FakeGitHub, worker: Worker, nats: NatsInfo) -> None:
    owner = user("Owner")
    p = project(owner)
    configure(client, owner, p)
    snap = bug_snapshot(p, number=42, title="Audio cuts out")

    async def publish() -> None:
        nc = await nats_client.connect(nats.url)
        e = Event(type=subjects.BUG_CREATED, source="bugs", data={"bug": snap, "changes": {}})
        await nc.jetstream().publish(e.type, e.to_json(), headers={"Nats-Msg-Id": e.id})
        await nc.close()

    asyncio.run(publish())
    deadline = time.monotonic() + 15
    while (resp := client.post(issue_path(p, snap["id"]), headers=owner.headers)).status_code == 404:
        assert time.monotonic() < deadline, "bug_created never reached the read model"
        time.sleep(0.1)
    assert resp.status_code == 201, resp.json
    assert github.requests[0].json()["title"] == "Audio cuts out"
    assert "| Bug | #42 |" in github.requests[0].json()["body"]
