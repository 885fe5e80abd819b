"""Steam settings, the review import and the dashboard, against a local fake Steam store
review API (real HTTP on 127.0.0.1), through the api on a real database."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fakes.base import Answer
from fakes.steam import FakeSteam, review
from flask import Flask
from flask.testing import FlaskClient
from integration.integrations.support import Project, User
from sqlmodel import func, select

from bugnet_common.db import Database
from integrations import crypto
from integrations.settings import IntegrationsSettings
from integrations.steam.models import SteamIntegration, SteamReview

MakeUser = Callable[..., User]
MakeProject = Callable[..., Project]
APP = 1091500
KEY = "0123456789ABCDEF0123456789ABCDEF"


@pytest.fixture()
def steam(integrations_settings: IntegrationsSettings) -> Iterator[FakeSteam]:
    """A fake Steam store at settings.steam_store_url."""
    fake = FakeSteam()
    fake.start()
    saved = integrations_settings.steam_store_url
    integrations_settings.steam_store_url = fake.url
    yield fake
    integrations_settings.steam_store_url = saved
    fake.stop()


@pytest.fixture()
def budget(integrations_settings: IntegrationsSettings) -> Iterator[Callable[[int], None]]:
    """Set the sync's page budget for one test."""
    saved = integrations_settings.steam_sync_max_pages

    def set_pages(pages: int) -> None:
        integrations_settings.steam_sync_max_pages = pages

    yield set_pages
    integrations_settings.steam_sync_max_pages = saved


def steam_path(p: Project, rest: str = "") -> str:
    return f"/api/projects/{p.slug}/integrations/steam{rest}"


def connect(client: FlaskClient, owner: User, p: Project, **body: Any) -> dict[str, Any]:
    resp = client.post(steam_path(p), json={"app_id": APP, **body}, headers=owner.headers)
    assert resp.status_code == 201, resp.json
    return resp.json["data"]


def sync(client: FlaskClient, owner: User, p: Project) -> dict[str, Any]:
    resp = client.post(steam_path(p, "/sync"), headers=owner.headers)
    assert resp.status_code == 200, resp.json
    return resp.json["data"]


def stored(db: Database) -> int:
    with db.session() as session:
        return int(session.exec(select(func.count()).select_from(SteamReview)).one())


def many(n: int, start: datetime | None = None) -> list[dict[str, Any]]:
    start = start or datetime.now(UTC) - timedelta(days=2)
    return [review(f"review {i}", voted_up=i % 4 != 0, at=start - timedelta(minutes=i))
            for i in range(n)]


# ---- settings -------------------------------------------------------------------------------

def test_steam_settings_keep_the_api_key_encrypted_and_never_return_it(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        integrations_settings: IntegrationsSettings) -> None:
    owner = user("Owner")
    p = project(owner)
    resp = client.post(steam_path(p), headers=owner.headers, json={"app_id": APP, "api_key": KEY})
    assert resp.status_code == 201, resp.json
    data = resp.json["data"]
    assert data["app_id"] == APP and data["has_api_key"] is True
    assert data["api_key_hint"] == "…CDEF" and data["last_synced_at"] is None
    assert KEY not in resp.get_data(as_text=True)
    got = client.get(steam_path(p), headers=owner.headers)
    assert got.status_code == 200 and got.json["data"] == data
    with integrations_db.session() as session:
        row = session.exec(select(SteamIntegration)).one()
    assert row.api_key_encrypted is not None and KEY not in row.api_key_encrypted
    assert crypto.decrypt(integrations_settings.secret(), row.api_key_encrypted) == KEY

    again = client.post(steam_path(p), headers=owner.headers, json={"app_id": 620})
    assert again.status_code == 409
    patched = client.patch(steam_path(p), headers=owner.headers,
                           json={"app_id": "620", "api_key": None})
    assert patched.status_code == 200, patched.json
    assert patched.json["data"]["app_id"] == 620 and patched.json["data"]["has_api_key"] is False
    assert client.delete(steam_path(p), headers=owner.headers).status_code == 200
    assert client.get(steam_path(p), headers=owner.headers).status_code == 404
    assert client.patch(steam_path(p), headers=owner.headers, json={}).status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({}, "app_id"),
    ({"app_id": "abc"}, "app_id"),
    ({"app_id": "12a"}, "app_id"),
    ({"app_id": -5}, "app_id"),
    ({"app_id": 0}, "app_id"),
    ({"app_id": 1.5}, "app_id"),
    ({"app_id": True}, "app_id"),
    ({"app_id": 2**40}, "app_id"),
    ({"app_id": APP, "api_key": "has spaces in it"}, "api_key"),
    ({"app_id": APP, "api_key": 1234567890}, "api_key"),
])
def test_bad_steam_settings_are_400_naming_the_field(
        client: FlaskClient, user: MakeUser, project: MakeProject, body: dict[str, Any],
        field: str) -> None:
    owner = user("Owner")
    p = project(owner)
    resp = client.post(steam_path(p), json=body, headers=owner.headers)
    assert resp.status_code == 400, resp.json
    assert field in resp.json["details"], resp.json
    connect(client, owner, p)
    patched = client.patch(steam_path(p), json=body or {"api_key": "x y"}, headers=owner.headers)
    assert patched.status_code == 400, patched.json


def test_steam_routes_need_their_permissions(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        member: Callable[..., None], steam: FakeSteam) -> None:
    owner, dev, outsider = user("Owner"), user("Dev"), user("Outsider")
    p = project(owner)
    member(p, dev, "member")  # analytics.view, not integrations.manage
    connect(client, owner, p)
    assert client.get(steam_path(p), headers=dev.headers).status_code == 403
    assert client.post(steam_path(p, "/sync"), headers=dev.headers).status_code == 403
    assert client.delete(steam_path(p), headers=dev.headers).status_code == 403
    assert client.get(steam_path(p, "/dashboard"), headers=dev.headers).status_code == 200
    assert client.get(steam_path(p, "/dashboard"), headers=outsider.headers).status_code == 404
    assert client.post(steam_path(p, "/sync")).status_code == 401
    assert steam.requests == []


# ---- sync -----------------------------------------------------------------------------------

def test_sync_pages_through_every_review_with_the_store_api_parameters(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        steam: FakeSteam) -> None:
    owner = user("Owner")
    p = project(owner)
    connect(client, owner, p)
    steam.add(APP, *many(250))
    result = sync(client, owner, p)
    assert (result["imported"], result["skipped"], result["pages"]) == (250, 0, 4)
    assert result["complete"] is True
    assert stored(integrations_db) == 250
    first = steam.requests[0]
    assert first.method == "GET" and first.path == f"/appreviews/{APP}"
    assert first.query == {"json": "1", "filter": "recent", "num_per_page": "100", "cursor": "*",
                           "language": "all", "purchase_type": "all"}
    # Steam's cursors contain '+' and '/': they arrived intact, so they were URL-encoded
    assert all(r.query["cursor"].endswith("+/") for r in steam.requests[1:])
    got = client.get(steam_path(p), headers=owner.headers).json["data"]
    assert got["last_synced_at"] is not None and got["sync_complete"] is True


def test_sync_is_idempotent_and_imports_only_new_reviews(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        steam: FakeSteam) -> None:
    owner = user("Owner")
    p = project(owner)
    connect(client, owner, p)
    steam.add(APP, *many(150))
    assert sync(client, owner, p)["imported"] == 150
    steam.requests.clear()
    again = sync(client, owner, p)
    assert (again["imported"], again["skipped"], again["pages"]) == (0, 100, 1)
    steam.add(APP, review("new one"), review("another one", voted_up=False),
              review("and a third"))
    fresh = sync(client, owner, p)
    assert (fresh["imported"], fresh["skipped"], fresh["pages"]) == (3, 97, 1)
    assert stored(integrations_db) == 153


def test_a_long_history_is_imported_over_several_bounded_syncs(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        steam: FakeSteam, budget: Callable[[int], None]) -> None:
    owner = user("Owner")
    p = project(owner)
    connect(client, owner, p)
    budget(2)
    steam.add(APP, *many(250))
    first = sync(client, owner, p)
    assert (first["imported"], first["pages"], first["complete"]) == (200, 2, False)
    assert client.get(steam_path(p), headers=owner.headers).json["data"]["sync_complete"] is False
    steam.add(APP, *[review(f"fresh {i}") for i in range(5)])
    second = sync(client, owner, p)  # catches up on the new ones, then continues the backlog
    assert second["imported"] == 55 and second["complete"] is False
    third = sync(client, owner, p)
    assert third["imported"] == 0 and third["complete"] is True
    assert stored(integrations_db) == 255


@pytest.mark.parametrize(("answer", "message"), [
    (Answer.of(500, {"error": "internal"}), "Steam answered 500: try again later"),
    (Answer(200, b"<html>Service Unavailable</html>", content_type="text/html"),
     "Steam answered with an unexpected body (not JSON)"),
    (Answer.of(200, {"success": 2}), "Steam refused the request (success=2)"),
    (Answer.of(200, {"success": 1, "reviews": "nope", "cursor": "x"}),
     "Steam answered with an unexpected body ('reviews' is not a list)"),
    (Answer.of(200, {"success": 1, "cursor": "AoJx",
                     "reviews": [{"review": "no id", "voted_up": True}]}),
     "Steam answered with an unexpected body (a review without recommendationid"),
])
def test_steam_failing_on_a_later_page_is_502_and_imports_nothing(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        steam: FakeSteam, answer: Answer, message: str) -> None:
    owner = user("Owner")
    p = project(owner)
    connect(client, owner, p)
    steam.add(APP, *many(250))
    steam.script(None, answer)  # the first page is fine, the second fails
    resp = client.post(steam_path(p, "/sync"), headers=owner.headers)
    assert resp.status_code == 502, resp.json
    assert resp.json["code"] == "bad_gateway" and resp.json["error"].startswith(message)
    assert len(steam.requests) == 2
    assert stored(integrations_db) == 0
    # nothing half-done: the next sync imports everything
    assert sync(client, owner, p)["imported"] == 250


def test_concurrent_syncs_of_one_project_are_409(
        integrations_app: Flask, client: FlaskClient, user: MakeUser, project: MakeProject,
        integrations_db: Database, steam: FakeSteam) -> None:
    owner = user("Owner")
    p = project(owner)
    connect(client, owner, p)
    steam.add(APP, *many(30))
    steam.delay = 0.5
    statuses: list[int] = []

    def post() -> None:
        statuses.append(integrations_app.test_client()
                        .post(steam_path(p, "/sync"), headers=owner.headers).status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 409]
    assert stored(integrations_db) == 30


def test_changing_the_app_drops_the_previous_apps_reviews(
        client: FlaskClient, user: MakeUser, project: MakeProject, integrations_db: Database,
        steam: FakeSteam) -> None:
    owner = user("Owner")
    p = project(owner)
    connect(client, owner, p)
    steam.add(APP, *many(10))
    steam.add(620, *many(4))
    sync(client, owner, p)
    resp = client.patch(steam_path(p), headers=owner.headers, json={"app_id": 620})
    assert resp.status_code == 200 and resp.json["data"]["last_synced_at"] is None
    assert stored(integrations_db) == 0
    assert sync(client, owner, p)["imported"] == 4


def test_sync_without_steam_settings_is_404(
        client: FlaskClient, user: MakeUser, project: MakeProject, steam: FakeSteam) -> None:
    owner = user("Owner")
    p = project(owner)
    assert client.post(steam_path(p, "/sync"), headers=owner.headers).status_code == 404
    assert client.get(steam_path(p, "/dashboard"), headers=owner.headers).status_code == 404


# ---- dashboard ------------------------------------------------------------------------------

def test_dashboard_counts_trend_negatives_and_bug_mentions(
        client: FlaskClient, user: MakeUser, project: MakeProject, steam: FakeSteam) -> None:
    owner = user("Owner")
    p = project(owner)
    connect(client, owner, p)
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    day = timedelta(days=1)
    steam.add(APP,
              review("Great game, love it", at=now - 2 * day),
              review("Crashes on startup every time, unplayable", voted_up=False,
                     at=now - 2 * day + timedelta(hours=1)),
              review("Fun but a few bugs and some lag", at=now - 2 * day + timedelta(hours=2)),
              review("Boring", voted_up=False, at=now - day),
              review("The game froze and my save got corrupted save", voted_up=False,
                     at=now - 40 * day),
              review("Ancient praise", at=now - 400 * day))
    sync(client, owner, p)

    resp = client.get(steam_path(p, "/dashboard"), headers=owner.headers, query_string={"days": 7})
    assert resp.status_code == 200, resp.json
    d = resp.json["data"]
    assert d["app_id"] == APP and d["last_synced_at"] is not None
    assert d["reviews"] == {"total": 6, "positive": 3, "negative": 3, "positive_share": 50.0,
                            "bug_mentions": 3}
    assert d["window"] == {"days": 7, "total": 4, "positive": 2, "negative": 2,
                           "positive_share": 50.0, "bug_mentions": 2}
    assert d["steam_summary"]["total_reviews"] == 6
    assert d["steam_summary"]["review_score_desc"] == "Mostly Positive"
    trend = d["trend"]
    assert len(trend) == 7 and trend[-1]["date"] == now.date().isoformat()
    two_days_ago = next(t for t in trend if t["date"] == (now - 2 * day).date().isoformat())
    assert two_days_ago == {"date": two_days_ago["date"], "total": 3, "positive": 2,
                            "negative": 1, "positive_share": 66.67}
    assert trend[-1]["total"] == 0 and trend[-1]["positive_share"] is None
    assert [r["review"] for r in d["recent_negative"]] == [
        "Boring", "Crashes on startup every time, unplayable",
        "The game froze and my save got corrupted save"]
    negative = d["recent_negative"][1]
    assert negative["voted_up"] is False and negative["mentions"] == ["crash", "unplayable"]
    assert negative["url"].startswith("https://steamcommunity.com/profiles/")
    mentions = d["bug_mentions"]
    assert mentions["total"] == 3 and mentions["window"] == 2
    assert mentions["terms"] == {"bug": 1, "corrupted save": 1, "crash": 1, "freeze": 1,
                                 "lag": 1, "unplayable": 1}
    assert [r["review"][:10] for r in mentions["recent"]] == ["Fun but a ", "Crashes on",
                                                              "The game f"]


@pytest.mark.parametrize("days", ["0", "366", "abc", "-1"])
def test_dashboard_days_out_of_range_is_400(
        client: FlaskClient, user: MakeUser, project: MakeProject, days: str) -> None:
    owner = user("Owner")
    p = project(owner)
    connect(client, owner, p)
    resp = client.get(steam_path(p, "/dashboard"), headers=owner.headers,
                      query_string={"days": days})
    assert resp.status_code == 400 and "days" in resp.json["details"]
