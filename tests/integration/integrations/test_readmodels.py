"""The read models (projects, members, users) built from bugs' and auth's events, and what
they decide: who may manage a project's integrations."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

import nats as nats_client
from flask.testing import FlaskClient
from integration.integrations.support import ROLE_PERMISSIONS, Project, User, apply, event
from sqlmodel import select

from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event, isoformat, utcnow
from bugnet_common.bus.worker import Worker
from bugnet_common.db import Database
from bugnet_common.testing import TokenIssuer
from integrations.models import MemberRef, ProjectRef, UserRef, Webhook
from servers import NatsInfo


def publish(nats_url: str, *events: Event) -> None:
    async def main() -> None:
        nc = await nats_client.connect(nats_url)
        js = nc.jetstream()
        for e in events:
            await js.publish(e.type, e.to_json(), headers={"Nats-Msg-Id": e.id})
        await nc.close()

    asyncio.run(main())


def wait_status(client: FlaskClient, path: str, user_headers: dict[str, str], status: int,
                timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (got := client.get(path, headers=user_headers).status_code) != status:
        if time.monotonic() > deadline:
            raise AssertionError(f"{path}: {got}, expected {status}")
        time.sleep(0.05)


def test_worker_builds_read_models_from_the_bus(client: FlaskClient, worker: Worker,
                                                nats: NatsInfo, issuer: TokenIssuer,
                                                integrations_db: Database) -> None:
    owner_id, dev_id, project_id = (str(uuid.uuid4()) for _ in range(3))
    slug = f"bus-{project_id[:8]}"
    owner = {"Authorization": f"Bearer {issuer.token(owner_id, 'o@example.com')}"}
    dev = {"Authorization": f"Bearer {issuer.token(dev_id, 'd@example.com')}"}
    path = f"/api/projects/{slug}/webhooks"
    member_perms = sorted(ROLE_PERMISSIONS["member"])
    publish(nats.url,
            Event(type=subjects.USER_REGISTERED, source="auth",
                  data={"user_id": owner_id, "email": "O@Example.com", "display_name": "Olga"}),
            Event(type=subjects.PROJECT_CREATED, source="bugs",
                  data={"project_id": project_id, "slug": slug, "name": "Bus Game",
                        "api_key_hash": "0" * 64, "owner_id": owner_id, "settings": {},
                        "changes": []}),
            Event(type=subjects.MEMBER_ADDED, source="bugs",
                  data={"project_id": project_id, "user_id": owner_id, "role": "owner",
                        "permissions": sorted(ROLE_PERMISSIONS["owner"])}),
            Event(type=subjects.MEMBER_ADDED, source="bugs",
                  data={"project_id": project_id, "user_id": dev_id, "role": "member",
                        "permissions": member_perms}))
    wait_status(client, path, owner, 200)
    wait_status(client, path, dev, 403)
    publish(nats.url, Event(type=subjects.MEMBER_UPDATED, source="bugs", data={
        "project_id": project_id, "user_id": dev_id, "role": "member",
        "permissions": [*member_perms, "integrations.manage"]}))
    wait_status(client, path, dev, 200)
    publish(nats.url, Event(type=subjects.MEMBER_REMOVED, source="bugs", data={
        "project_id": project_id, "user_id": dev_id, "role": None, "permissions": []}))
    wait_status(client, path, dev, 404)
    with integrations_db.session() as session:
        user = session.get(UserRef, owner_id)
        assert user is not None and (user.email, user.display_name) == ("o@example.com", "Olga")
    assert client.post(path, headers=owner, json={
        "url": "https://hooks.example.com/x", "events": ["bug_created"]}).status_code == 201
    publish(nats.url, Event(type=subjects.PROJECT_DELETED, source="bugs",
                            data={"project_id": project_id, "slug": slug}))
    wait_status(client, path, owner, 404)
    with integrations_db.session() as session:
        assert session.exec(select(Webhook)).all() == []  # went with the project


def test_older_events_do_not_undo_newer_ones(integrations_db: Database,
                                             user: Callable[..., User],
                                             project: Callable[..., Project]) -> None:
    p = project(user("Owner"))
    dev_id = str(uuid.uuid4())
    now = utcnow()

    def member_event(subject: str, at: int, role: str, perms: list[str]) -> Event:
        return Event(type=subject, source="bugs", time=isoformat(now + timedelta(seconds=at)),
                     data={"project_id": p.id, "user_id": dev_id, "role": role,
                           "permissions": perms})

    added = member_event(subjects.MEMBER_ADDED, 0, "member", ["bugs.view"])
    apply(integrations_db, added)
    apply(integrations_db, member_event(subjects.MEMBER_UPDATED, 10, "admin", ["team.view"]))
    apply(integrations_db, added)  # a late redelivery
    with integrations_db.session() as session:
        m = session.get(MemberRef, (p.id, dev_id))
        assert m is not None and (m.role, m.permissions) == ("admin", ["team.view"])


def test_deleted_users_are_removed_and_stay_removed(integrations_db: Database) -> None:
    user_id = str(uuid.uuid4())
    apply(integrations_db, event(subjects.USER_REGISTERED, source="auth", user_id=user_id,
                                 email="a@example.com", display_name="A"))
    apply(integrations_db, event(subjects.USER_DELETED, source="auth", user_id=user_id,
                                 email="a@example.com"))
    apply(integrations_db, event(subjects.USER_UPDATED, source="auth", user_id=user_id,
                                 email="a@example.com", display_name="Back", avatar=None,
                                 changes=["display_name"]))
    with integrations_db.session() as session:
        assert session.get(UserRef, user_id) is None


def test_project_renames_are_applied(integrations_db: Database, user: Callable[..., User],
                                     project: Callable[..., Project]) -> None:
    owner = user("Owner")
    p = project(owner)
    apply(integrations_db, event(subjects.PROJECT_UPDATED, project_id=p.id, slug=p.slug,
                                 name="Renamed", api_key_hash="0" * 64, owner_id=owner.id,
                                 settings={}, changes=["name"]))
    with integrations_db.session() as session:
        row = session.get(ProjectRef, p.id)
        assert row is not None and row.name == "Renamed"
