"""The read models of the bugs service, built from its events: who may see a project, which
API key works, what analytics knows of bugs."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from integration.analytics.support import Feeder, User
from sqlmodel import select

from analytics.access import access_for, member_access, project_for_api_key
from analytics.models import ApiKey, Bug, BugOccurrence, Member, Project
from bugnet_common import errors
from bugnet_common.auth import Principal
from bugnet_common.bus import subjects
from bugnet_common.db import Database


def principal(user: User) -> Principal:
    return Principal(user_id=user.id, email=user.email, session_id="s", claims={})


def test_owner_and_member_see_the_project_with_their_permissions(feed: Feeder,
                                                                 analytics_db: Database) -> None:
    project = feed.project("space-game")
    dev = feed.user("dev")
    feed.member(project, dev, "member")
    with analytics_db.session() as session:
        assert access_for(session, principal(project.owner), "space-game",
                          "settings.manage").id == project.id
        access = member_access(session, principal(dev), "space-game", "analytics.view")
        assert access.role == "member" and access.can("bugs.view")
        with pytest.raises(errors.Forbidden):
            access_for(session, principal(dev), "space-game", "integrations.manage")


def test_strangers_and_unknown_projects_are_not_found(feed: Feeder,
                                                      analytics_db: Database) -> None:
    project = feed.project()
    stranger = feed.user("stranger")
    with analytics_db.session() as session:
        with pytest.raises(errors.NotFound):
            access_for(session, principal(stranger), project.slug, "analytics.view")
        with pytest.raises(errors.NotFound):
            access_for(session, principal(project.owner), "no-such-project")


def test_overrides_carried_by_member_events_decide(feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    dev = feed.user("dev")
    feed.member(project, dev, "member", permissions=["bugs.view"])  # analytics.view denied
    with analytics_db.session() as session, pytest.raises(errors.Forbidden):
        access_for(session, principal(dev), project.slug, "analytics.view")


def test_a_removed_member_stays_removed_when_an_older_event_arrives_late(
        feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    dev = feed.user("dev")
    feed.member(project, dev, "member")
    feed.apply(subjects.MEMBER_REMOVED, {"project_id": project.id, "user_id": dev.id,
                                         "role": None, "permissions": []},
               time="2030-01-01T00:00:00Z")
    feed.apply(subjects.MEMBER_UPDATED, {"project_id": project.id, "user_id": dev.id,
                                         "role": "admin", "permissions": ["analytics.view"]},
               time="2029-12-31T00:00:00Z")
    with analytics_db.session() as session:
        assert session.get(Member, (project.id, dev.id)).role is None  # type: ignore[union-attr]
        with pytest.raises(errors.NotFound):
            access_for(session, principal(dev), project.slug)


def test_a_rotated_key_stops_working_and_the_new_one_works(feed: Feeder,
                                                           analytics_db: Database) -> None:
    project = feed.project()
    old = project.api_key
    new = feed.rotate_key(project)
    with analytics_db.session() as session:
        assert project_for_api_key(session, new).id == project.id
        with pytest.raises(errors.Unauthorized):
            project_for_api_key(session, old)
        with pytest.raises(errors.Unauthorized):
            project_for_api_key(session, None)
        with pytest.raises(errors.Unauthorized):
            project_for_api_key(session, "sk_live_short")


def test_rotations_replayed_out_of_order_leave_only_the_newest_key(
        feed: Feeder, analytics_db: Database) -> None:
    from bugnet_common import apikeys

    project = feed.project()
    k0 = apikeys.hash_api_key(project.api_key)
    k1, k2 = apikeys.generate_api_key(), apikeys.generate_api_key()
    h1, h2 = apikeys.hash_api_key(k1), apikeys.hash_api_key(k2)
    feed.apply(subjects.API_KEY_ROTATED, {"project_id": project.id, "api_key_hash": h2,
                                          "previous_hash": h1}, time="2030-01-02T00:00:00Z")
    feed.apply(subjects.API_KEY_ROTATED, {"project_id": project.id, "api_key_hash": h1,
                                          "previous_hash": k0}, time="2030-01-01T00:00:00Z")
    # A replayed project_updated carrying the first key does not bring it back either.
    feed.apply(subjects.PROJECT_UPDATED, {"project_id": project.id, "slug": project.slug,
                                          "name": "x", "api_key_hash": k0, "owner_id": None,
                                          "settings": {}}, time="2029-06-01T00:00:00Z")
    with analytics_db.session() as session:
        live = session.exec(select(ApiKey.key_hash).where(
            ApiKey.project_id == project.id, ApiKey.superseded_at.is_(None))).all()  # type: ignore[union-attr]
        assert live == [h2]
        assert project_for_api_key(session, k2).id == project.id


def test_a_redelivered_event_is_applied_once(feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    bug = feed.bug(project, title="Crash in menu", category="crash", fingerprint="f" * 16)
    for _ in range(2):
        feed.apply(subjects.BUG_OCCURRED, {"bug": bug, "occurrences": 2, "game_version": "1.1",
                                           "platform": "win32", "player_key": "steam:1"},
                   event_id="5d7cf8a4-8f5c-4a34-9c6e-2a8d5e0f1a11")
    with analytics_db.session() as session:
        stored = session.get(Bug, bug["id"])
        assert stored is not None and stored.occurrences == 2
        rows = session.exec(select(BugOccurrence).where(BugOccurrence.bug_id == bug["id"])
                            .order_by(BugOccurrence.occurred_at)).all()
        assert [(r.game_version, r.platform, r.player_key) for r in rows] == [
            (None, None, None), ("1.1", "Windows", "steam:1")]


def test_bugs_follow_their_status_and_deleted_bugs_stay_deleted(
        feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    bug = feed.bug(project, title="Falls through floor", status="resolved",
                   game_version="1.0", platform="darwin")
    with analytics_db.session() as session:
        stored = session.get(Bug, bug["id"])
        assert stored is not None
        assert (stored.status, stored.platform, stored.number) == ("resolved", "macOS", 1)
        assert stored.resolved_at is not None
    feed.delete_bug(project, bug)
    feed.apply(subjects.BUG_UPDATED, {"bug": {**bug, "title": "late"}, "changes": {}})
    with analytics_db.session() as session:
        assert session.get(Bug, bug["id"]) is None


def test_a_deleted_project_leaves_nothing_behind(feed: Feeder, analytics_db: Database) -> None:
    project = feed.project()
    other = feed.project()
    feed.bug(project, title="x")
    feed.bug(other, title="y")
    feed.delete_project(project)
    feed.apply(subjects.PROJECT_UPDATED, {"project_id": project.id, "slug": project.slug,
                                          "name": "late", "api_key_hash": "0" * 64,
                                          "owner_id": None, "settings": {}})
    with analytics_db.session() as session:
        assert session.get(Project, project.id) is None
        for table in ("api_keys", "members", "bugs"):
            left = session.execute(sa.text(f"SELECT count(*) FROM {table} WHERE project_id = :p"),
                                   {"p": project.id}).scalar_one()
            assert left == 0, table
        assert session.get(Project, other.id) is not None
        assert session.exec(select(Bug).where(Bug.project_id == other.id)).first() is not None
