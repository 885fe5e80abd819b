"""The users read model and account deletion, from auth's events; this service's export part.

The handlers are called directly against the real database, and once through a real worker
with NATS (events in, export answered over request/reply).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import nats as nats_client
import pytest
import sqlalchemy as sa
from sqlmodel import select

from bugnet_common import apikeys
from bugnet_common.bus import subjects
from bugnet_common.bus.client import BusThread
from bugnet_common.bus.events import Event, ExportRequest, isoformat, utcnow
from bugnet_common.bus.inbox import PoisonMessage
from bugnet_common.db import Database
from bugnet_common.testing import worker_thread
from bugs import handlers
from bugs.models import (
    BUS,
    Attachment,
    Bug,
    Comment,
    Member,
    PermissionOverride,
    Project,
    UserRef,
)
from bugs.sdk.storage import MissingObject, storage_from_settings
from bugs.views import bugs_out
from bugs.worker import build_worker, export_part

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=utcnow().tzinfo)


def uid() -> str:
    return str(uuid.uuid4())


def event(subject: str, at: datetime | None = None, **data: Any) -> Event:
    return Event(type=subject, source="auth", data=data, time=isoformat(at or utcnow()))


def apply(db: Database, ev: Event) -> None:
    with db.begin() as session:
        handlers.dispatch(session=session, event=ev)


def add_project(db: Database, slug: str, members: list[tuple[str, str, int]]) -> str:
    """A project with (user_id, role, minutes after T0 they joined) members; its id."""
    project_id = uid()
    key = apikeys.generate_api_key()
    with db.begin() as session:
        session.add(Project(id=project_id, slug=slug, name=slug.title(),
                            api_key_hash=apikeys.hash_api_key(key), api_key_last4=key[-4:]))
        session.flush()
        for user_id, role, minutes in members:
            session.add(Member(project_id=project_id, user_id=user_id, role=role,
                               joined_at=T0 + timedelta(minutes=minutes)))
    return project_id


def team(db: Database, project_id: str) -> dict[str, str]:
    with db.session() as session:
        return {m.user_id: m.role for m in session.exec(
            select(Member).where(Member.project_id == project_id))}


def outbox(db: Any) -> list[tuple[str, dict[str, Any]]]:
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(BUS.outbox.c.subject, BUS.outbox.c.payload)
                            .order_by(BUS.outbox.c.seq)).all()
    return [(s, json.loads(p)["data"]) for s, p in rows]


def test_user_registered_and_updated_maintain_the_read_model(bugs_db) -> None:  # type: ignore[no-untyped-def]
    user_id = uid()
    registered = event(subjects.USER_REGISTERED, T0, user_id=user_id, email="Ann@Example.com",
                       display_name="Ann")
    apply(bugs_db, registered)
    apply(bugs_db, registered)  # a replay changes nothing
    apply(bugs_db, event(subjects.USER_UPDATED, T0 + timedelta(hours=1), user_id=user_id,
                         email="ann@new.example", display_name="Ann B", avatar="https://a/1.png",
                         changes=["email", "display_name", "avatar"]))
    # A late redelivery of the older event must not undo the newer one.
    apply(bugs_db, registered)
    with bugs_db.session() as session:
        users = session.exec(select(UserRef)).all()
    assert [(u.id, u.email, u.display_name, u.avatar, u.deleted) for u in users] == [
        (user_id, "ann@new.example", "Ann B", "https://a/1.png", False)]


def test_an_update_before_registration_still_lands(bugs_db) -> None:  # type: ignore[no-untyped-def]
    user_id = uid()
    apply(bugs_db, event(subjects.USER_UPDATED, user_id=user_id, email="b@example.com",
                         display_name="Bea", avatar=None, changes=["display_name"]))
    with bugs_db.session() as session:
        user = session.get(UserRef, user_id)
        assert user is not None and user.display_name == "Bea"


def test_a_user_first_seen_through_a_token_gets_their_name_from_the_event(client, bugs_db, issuer) -> None:  # type: ignore[no-untyped-def]
    user_id, addr = uid(), "fresh@example.com"
    registered_at = utcnow()  # registered before their first request, event processed after
    headers = {"Authorization": f"Bearer {issuer.token(user_id, addr)}"}
    assert client.post("/api/projects", json={"name": "Fresh"}, headers=headers).status_code == 201
    apply(bugs_db, event(subjects.USER_REGISTERED, registered_at, user_id=user_id, email=addr,
                         display_name="Fresh Dev"))
    team_list = client.get("/api/projects/fresh/team", headers=headers).json["data"]
    assert team_list[0]["display_name"] == "Fresh Dev"


def test_deleting_a_user_removes_memberships_and_passes_projects_on(bugs_db) -> None:  # type: ignore[no-untyped-def]
    gone, a1, a2, m1, m2, owner = (uid() for _ in range(6))
    with bugs_db.begin() as session:
        session.add(UserRef(id=gone, email="gone@example.com", display_name="Gone", avatar="x"))
    alone = add_project(bugs_db, "alone", [(gone, "owner", 0)])
    with_admins = add_project(bugs_db, "with-admins", [
        (m1, "member", 1), (gone, "owner", 0), (a2, "admin", 3), (a1, "admin", 2)])
    only_members = add_project(bugs_db, "only-members", [
        (gone, "owner", 0), (m2, "member", 5), (m1, "member", 4)])
    theirs = add_project(bugs_db, "theirs", [(owner, "owner", 0), (gone, "member", 1)])
    bug_id, comment_id = uid(), uid()
    with bugs_db.begin() as session:
        session.add_all([
            PermissionOverride(project_id=theirs, user_id=gone, permission="bugs.delete",
                               granted=True),
            PermissionOverride(project_id=with_admins, user_id=a1, permission="bugs.edit",
                               granted=False),
            Bug(id=bug_id, project_id=theirs, number=1, title="Crash", reporter_user_id=gone,
                assignee_id=gone)])
        session.flush()
        session.add(Comment(id=comment_id, bug_id=bug_id, author_id=gone, body="Still here"))

    deleted = event(subjects.USER_DELETED, user_id=gone, email="gone@example.com")
    apply(bugs_db, deleted)

    with bugs_db.session() as session:
        assert session.get(Project, alone) is None
        assert session.exec(select(sa.func.count()).select_from(PermissionOverride)).one() == 0
        user = session.get(UserRef, gone)
        assert user is not None and user.deleted and user.email == "" and user.avatar is None
        bug = session.get(Bug, bug_id)
        assert bug is not None and session.get(Comment, comment_id) is not None
        (shown,) = bugs_out(session, [bug])
    assert shown["reporter"]["display_name"] == "Deleted user" and shown["reporter"]["id"] is None
    assert shown["assignee"]["display_name"] == "Deleted user"
    assert team(bugs_db, with_admins) == {a1: "owner", a2: "admin", m1: "member"}
    assert team(bugs_db, only_members) == {m1: "owner", m2: "member"}
    assert team(bugs_db, theirs) == {owner: "owner"}
    events = outbox(bugs_db)
    assert (subjects.PROJECT_DELETED, {"project_id": alone, "slug": "alone"}) in events
    changes = [(s, d["project_id"], d["user_id"], d["role"]) for s, d in events
               if s != subjects.PROJECT_DELETED]
    assert sorted(changes) == sorted([
        (subjects.MEMBER_UPDATED, with_admins, a1, "owner"),
        (subjects.MEMBER_REMOVED, with_admins, gone, None),
        (subjects.MEMBER_UPDATED, only_members, m1, "owner"),
        (subjects.MEMBER_REMOVED, only_members, gone, None),
        (subjects.MEMBER_REMOVED, theirs, gone, None)])
    new_owner = next(d for s, d in events if s == subjects.MEMBER_UPDATED and d["user_id"] == a1)
    assert "project.delete" in new_owner["permissions"] and "bugs.edit" in new_owner["permissions"]

    # The same deletion again (a replay with a new id) finds nothing more to do.
    apply(bugs_db, event(subjects.USER_DELETED, user_id=gone, email="gone@example.com"))
    assert len(outbox(bugs_db)) == len(events)
    # A late user_updated does not bring the account back.
    apply(bugs_db, event(subjects.USER_UPDATED, utcnow() + timedelta(minutes=1), user_id=gone,
                         email="gone@example.com", display_name="Back", avatar=None, changes=[]))
    with bugs_db.session() as session:
        user = session.get(UserRef, gone)
        assert user is not None and user.deleted and user.display_name == ""


def test_a_deleted_users_solo_project_takes_its_attachment_files_along(bugs_db, bugs_settings) -> None:  # type: ignore[no-untyped-def]
    gone = uid()
    solo = add_project(bugs_db, "solo", [(gone, "owner", 0)])
    store = storage_from_settings(bugs_settings)
    key = f"{solo}/{uid()}.png"
    store.put(key, b"\x89PNG", "image/png")
    with bugs_db.begin() as session:
        session.add(Attachment(id=uid(), project_id=solo, kind="screenshot",
                               content_type="image/png", size=4, storage_key=key))
        handlers.dispatch(session=session, storage=store,
                          event=event(subjects.USER_DELETED, user_id=gone, email="g@example.com"))
    with bugs_db.session() as session:
        assert session.get(Project, solo) is None
    with pytest.raises(MissingObject):
        store.get(key)


def test_deleting_an_unknown_user_is_harmless(bugs_db) -> None:  # type: ignore[no-untyped-def]
    user_id = uid()
    apply(bugs_db, event(subjects.USER_DELETED, user_id=user_id, email="x@example.com"))
    with bugs_db.session() as session:
        user = session.get(UserRef, user_id)
        assert user is not None and user.deleted
    assert outbox(bugs_db) == []


def test_malformed_and_foreign_events_are_poison(bugs_db) -> None:  # type: ignore[no-untyped-def]
    for bad in (event(subjects.USER_DELETED), event(subjects.USER_REGISTERED, user_id=uid()),
                event(subjects.SESSION_REVOKED, session_id="s")):
        with pytest.raises(PoisonMessage), bugs_db.begin() as session:
            handlers.dispatch(session=session, event=bad)


def test_export_lists_memberships_reported_bugs_comments_and_blocking_projects(bugs_db) -> None:  # type: ignore[no-untyped-def]
    me, other = uid(), uid()
    blocking = add_project(bugs_db, "blocking", [(me, "owner", 0), (other, "member", 1)])
    add_project(bugs_db, "solo", [(me, "owner", 0)])
    add_project(bugs_db, "as-member", [(other, "owner", 0), (me, "member", 2)])
    add_project(bugs_db, "not-mine", [(other, "owner", 0)])
    bug_id, comment_id = uid(), uid()
    with bugs_db.begin() as session:
        session.add_all([Bug(id=bug_id, project_id=blocking, number=7, title="Mine",
                             description="Broken", reporter_user_id=me),
                         Bug(id=uid(), project_id=blocking, number=8, title="Theirs",
                             reporter_user_id=other)])
        session.flush()
        session.add(Comment(id=comment_id, bug_id=bug_id, author_id=me, body="Note",
                            internal=True))
    part = export_part(bugs_db, ExportRequest(user_id=me, email="me@example.com"))
    assert [(m["slug"], m["role"]) for m in part["memberships"]] == [
        ("blocking", "owner"), ("solo", "owner"), ("as-member", "member")]
    assert set(part["memberships"][0]) == {"project_id", "slug", "name", "role", "joined_at"}
    assert [(b["id"], b["project_slug"], b["number"], b["title"]) for b in part["bugs"]] == [
        (bug_id, "blocking", 7, "Mine")]
    assert part["comments"] == [{"id": comment_id, "bug_id": bug_id, "body": "Note",
                                 "internal": True,
                                 "created_at": part["comments"][0]["created_at"]}]
    assert part["blocking_projects"] == [{"slug": "blocking", "name": "Blocking"}]
    json.dumps(part)  # the worker sends it as JSON
    empty = export_part(bugs_db, ExportRequest(user_id=uid(), email="n@example.com"))
    assert empty == {"memberships": [], "bugs": [], "comments": [], "blocking_projects": []}


def wait_until(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


async def publish(url: str, events: list[Event]) -> None:
    nc = await nats_client.connect(url)
    js = nc.jetstream()
    for ev in events:
        await js.publish(ev.type, ev.to_json(), headers={"Nats-Msg-Id": ev.id})
    await nc.close()


def test_worker_applies_auth_events_from_nats_and_answers_the_export(bugs_db, bugs_settings, nats) -> None:  # type: ignore[no-untyped-def]
    owner, leaving = uid(), uid()
    project_id = add_project(bugs_db, "worked", [(owner, "owner", 0), (leaving, "admin", 1)])
    events = [
        event(subjects.USER_REGISTERED, user_id=owner, email="owner@example.com",
              display_name="Owner"),
        event(subjects.USER_UPDATED, utcnow() + timedelta(seconds=1), user_id=owner,
              email="owner@example.com", display_name="Owner Renamed", avatar=None,
              changes=["display_name"]),
        event(subjects.USER_DELETED, user_id=leaving, email="leaving@example.com"),
    ]
    with worker_thread(build_worker(bugs_settings, bugs_db)):
        asyncio.run(publish(nats.url, events))

        def applied() -> bool:
            with bugs_db.session() as session:
                user = session.get(UserRef, owner)
                return (user is not None and user.display_name == "Owner Renamed"
                        and team(bugs_db, project_id) == {owner: "owner"})

        assert wait_until(applied, 15)
        bus = BusThread(nats.url, "export-test").start()
        try:
            assert bus.wait_connected(5)
            replies = bus.gather(subjects.EXPORT_REQUESTED,
                                 {"user_id": owner, "email": "owner@example.com"},
                                 expected={"bugs"}, timeout=5)
        finally:
            bus.stop()
    assert replies["bugs"]["ok"] is True
    assert [m["slug"] for m in replies["bugs"]["data"]["memberships"]] == ["worked"]
    assert replies["bugs"]["data"]["blocking_projects"] == []
    with bugs_db.engine.connect() as conn:
        inbox = conn.execute(sa.select(BUS.inbox.c.event_id).where(
            BUS.inbox.c.consumer == "bugs-users")).scalars().all()
    assert {e.id for e in events} <= set(inbox)
