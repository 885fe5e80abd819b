"""`python -m bugs.worker`: the outbox relay, the users read model (auth's user events) and
this service's part of the account export."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from bugnet_common.bus import subjects
from bugnet_common.bus.events import ExportRequest
from bugnet_common.bus.inbox import Consumer
from bugnet_common.bus.worker import Worker, run
from bugnet_common.db import Database

from .handlers import dispatch
from .models import BUS, Bug, Comment, Member, Project
from .sdk.storage import AttachmentStorage, storage_from_settings
from .settings import BugsSettings
from .views import iso

USERS_DURABLE = "bugs-users"


def consumers(storage: AttachmentStorage | None = None) -> list[Consumer]:
    return [Consumer(durable=USERS_DURABLE, stream="AUTH",
                     subjects=[subjects.USER_REGISTERED, subjects.USER_UPDATED,
                               subjects.USER_DELETED],
                     handler=functools.partial(dispatch, storage=storage))]


def export_part(db: Database, request: ExportRequest) -> dict[str, Any]:
    """What this service holds about a user: memberships, the bugs they reported, their
    comments, and the projects their account deletion would orphan (auth refuses it then)."""
    user_id = request.user_id
    with db.session() as session:
        memberships = session.exec(
            select(Member, Project).join(Project, col(Project.id) == Member.project_id)
            .where(Member.user_id == user_id)
            .order_by(col(Member.joined_at), col(Project.slug))).all()
        others = dict(session.exec(
            select(Member.project_id, sa.func.count()).where(
                col(Member.project_id).in_([m.project_id for m, _ in memberships]),
                Member.user_id != user_id)
            .group_by(col(Member.project_id))).all()) if memberships else {}
        bugs = session.exec(
            select(Bug, Project.slug).join(Project, col(Project.id) == Bug.project_id)
            .where(Bug.reporter_user_id == user_id)
            .order_by(col(Bug.created_at), col(Bug.id))).all()
        comments = session.exec(select(Comment).where(Comment.author_id == user_id)
                                .order_by(col(Comment.created_at), col(Comment.id))).all()
    return {
        "memberships": [{"project_id": p.id, "slug": p.slug, "name": p.name, "role": m.role,
                         "joined_at": iso(m.joined_at)} for m, p in memberships],
        "bugs": [{"id": b.id, "project_slug": slug, "number": b.number, "title": b.title,
                  "description": b.description, "created_at": iso(b.created_at)}
                 for b, slug in bugs],
        "comments": [{"id": c.id, "bug_id": c.bug_id, "body": c.body, "internal": c.internal,
                      "created_at": iso(c.created_at)} for c in comments],
        "blocking_projects": [{"slug": p.slug, "name": p.name} for m, p in memberships
                              if m.role == "owner" and others.get(p.id, 0) > 0],
    }


def exporter(db: Database) -> Callable[[ExportRequest], dict[str, Any]]:
    return lambda request: export_part(db, request)


def build_worker(settings: BugsSettings, db: Database) -> Worker:
    return Worker(service="bugs", nats_url=settings.nats_url, db=db, tables=BUS,
                  consumers=consumers(storage_from_settings(settings)), export=exporter(db))


def main() -> None:
    settings = BugsSettings()
    db = Database(settings.database_url.get_secret_value(), pool_size=2)
    run(build_worker(settings, db), settings)


if __name__ == "__main__":
    main()
