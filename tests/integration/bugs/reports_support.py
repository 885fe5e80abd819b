"""Helpers of the reports and labels tests: members and overrides staged in the database (as
the team area leaves them), bugs filed through the API, outbox and table reads."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient

from bugnet_common.db import Database
from bugs.models import BUS, Member, PermissionOverride


def add_member(db: Database, project: dict[str, Any], user: Any, role: str = "member",
               **overrides: bool) -> None:
    """Make `user` a member with `role`; keyword overrides such as bugs_assign=False."""
    with db.begin() as session:
        session.add(Member(project_id=project["id"], user_id=user.id, role=role))
        for name, granted in overrides.items():
            session.add(PermissionOverride(project_id=project["id"], user_id=user.id,
                                           permission=name.replace("_", "."), granted=granted))


def file_bug(client: FlaskClient, project: dict[str, Any], user: Any, title: str,
             **fields: Any) -> dict[str, Any]:
    resp = client.post(f"/api/projects/{project['slug']}/bugs", json={"title": title, **fields},
                       headers=user.headers)
    assert resp.status_code == 201, resp.json
    return resp.json["data"]  # type: ignore[no-any-return]


def patch_bug(client: FlaskClient, project: dict[str, Any], user: Any, bug: dict[str, Any],
              **fields: Any) -> Any:
    return client.patch(f"/api/projects/{project['slug']}/bugs/{bug['id']}", json=fields,
                        headers=user.headers)


def outbox(db: Database) -> list[tuple[str, dict[str, Any]]]:
    """(subject, data) of every staged event, oldest first."""
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(BUS.outbox.c.subject, BUS.outbox.c.payload)
                            .order_by(BUS.outbox.c.seq)).all()
    return [(subject, json.loads(payload)["data"]) for subject, payload in rows]


def events(db: Database, subject: str) -> list[dict[str, Any]]:
    return [data for s, data in outbox(db) if s == subject]


def scalar(db: Database, sql: str, **params: Any) -> Any:
    with db.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()
