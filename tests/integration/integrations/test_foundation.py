"""The foundation other areas build on: access from the read models, and `enqueue`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
from integration.integrations.support import Project, User, apply, event
from sqlmodel import select

from bugnet_common import errors
from bugnet_common.auth import Principal
from bugnet_common.bus import subjects
from bugnet_common.db import Database
from integrations import crypto
from integrations.access import access_for
from integrations.dispatch import enqueue
from integrations.models import Delivery, DiscordIntegration, MemberRef, ProjectRef, Webhook


def principal(user: User) -> Principal:
    return Principal(user_id=user.id, email=user.email, session_id=str(uuid.uuid4()), claims={})


def test_member_with_permission_gets_access(integrations_db: Database, user: Callable[..., User],
                                            project: Callable[..., Project]) -> None:
    owner = user("Owner")
    p = project(owner)
    with integrations_db.session() as session:
        access = access_for(session, principal(owner), p.slug, "integrations.manage")
    assert access.project.id == p.id and access.role == "owner"


def test_non_member_gets_404_and_member_without_permission_403(
        integrations_db: Database, user: Callable[..., User], project: Callable[..., Project],
        member: Callable[..., None]) -> None:
    owner, stranger, dev = user("Owner"), user("Stranger"), user("Dev")
    p = project(owner)
    member(p, dev, "member")
    with integrations_db.session() as session:
        with pytest.raises(errors.NotFound):
            access_for(session, principal(stranger), p.slug, "integrations.manage")
        with pytest.raises(errors.NotFound):
            access_for(session, principal(owner), "no-such-project", "integrations.manage")
        with pytest.raises(errors.Forbidden):
            access_for(session, principal(dev), p.slug, "integrations.manage")
        assert access_for(session, principal(dev), p.slug, "bugs.view").role == "member"


def test_enqueue_targets_enabled_webhooks_subscribed_to_the_event(
        integrations_db: Database, user: Callable[..., User], project: Callable[..., Project],
        integrations_settings) -> None:  # type: ignore[no-untyped-def]
    p = project(user("Owner"))
    secret = crypto.encrypt(integrations_settings.secret(), "s3cret")
    with integrations_db.begin() as session:
        for hook_id, events, enabled in (("a", ["bug_created"], True),
                                         ("b", ["bug_updated"], True),
                                         ("c", ["bug_created"], False)):
            session.add(Webhook(id=str(uuid.uuid5(uuid.NAMESPACE_DNS, hook_id + p.id)),
                                project_id=p.id, url="https://hooks.example.com/x",
                                events=events, secret_encrypted=secret, enabled=enabled))
        session.add(DiscordIntegration(project_id=p.id, webhook_url_encrypted=secret,
                                       webhook_url_hint="x", events=["bug_created"]))
    with integrations_db.begin() as session:
        enqueue(session, project_id=p.id, event="bug_created", data={"id": "b1", "title": "T"})
    with integrations_db.session() as session:
        rows = session.exec(select(Delivery)).all()
    assert sorted(d.channel for d in rows) == ["discord", "webhook"]
    hook = next(d for d in rows if d.channel == "webhook")
    body = json.loads(hook.body)
    assert body["event"] == "bug_created" and body["project"] == p.slug
    assert body["delivery_id"] == hook.id and body["data"] == {"id": "b1", "title": "T"}
    assert hook.status == "pending" and hook.target_key == "hooks.example.com:443"


def test_read_models_are_idempotent_and_deleted_projects_stay_deleted(
        integrations_db: Database, user: Callable[..., User],
        project: Callable[..., Project]) -> None:
    owner = user("Owner")
    p = project(owner)
    gone = event(subjects.PROJECT_DELETED, project_id=p.id, slug=p.slug)
    apply(integrations_db, gone)
    apply(integrations_db, gone)
    apply(integrations_db, event(subjects.PROJECT_UPDATED, project_id=p.id, slug=p.slug,
                                 name="Back?", api_key_hash="0" * 64, owner_id=owner.id,
                                 settings={}, changes=["name"]))
    with integrations_db.session() as session:
        assert session.get(ProjectRef, p.id) is None
        assert session.exec(select(MemberRef).where(MemberRef.project_id == p.id)).all() == []


def test_an_empty_fetch_is_a_no_op_for_the_consumers(integrations_db: Database) -> None:
    # nats-py's fetch can return no message; the batch must not be "retried" forever (which
    # stalled every integrations consumer before it was fixed in bugnet_common.bus.inbox).
    from bugnet_common.bus.inbox import process_batch
    from integrations.models import BUS

    def never(**_: object) -> None:
        raise AssertionError("no event to handle")

    assert process_batch(integrations_db, BUS, "integrations-test", [], never) == []
