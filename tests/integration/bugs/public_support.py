"""Helpers of the public-tracker tests: bugs and comments staged straight in the database (the
way the team's dashboard leaves them), the tracker switched through the API, outbox reads."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient

from bugnet_common.bus.events import utcnow
from bugnet_common.db import Database
from bugs.models import BUS, Bug, Comment, Member, Project
from bugs.reports.schemas import BugIn
from bugs.reports.service import new_bug


def file_bug(db: Database, project: dict[str, Any], title: str, *, public: bool = True,
             **fields: Any) -> Bug:
    """A bug as the team filed it; `public` as if they published it; other columns (votes,
    assignee_id, fingerprint, status...) set directly."""
    report = {k: v for k, v in fields.items() if k in BugIn.model_fields}
    columns = {k: v for k, v in fields.items() if k not in BugIn.model_fields}
    with db.session() as session:
        row = session.get(Project, project["id"])
        assert row is not None
        bug = new_bug(session, project=row, data=BugIn.model_validate({"title": title, **report}),
                      source="dashboard", reporter_user_id=columns.pop("reporter_user_id", None))
        bug.is_public = public
        for name, value in columns.items():
            setattr(bug, name, value)
        session.add(bug)
        session.commit()
        return bug


def add_comment(db: Database, bug: Bug, body: str, *, author_id: str | None,
                internal: bool = False, minutes: int = 0) -> str:
    comment_id = str(uuid.uuid4())
    at: datetime = utcnow() + timedelta(minutes=minutes)
    with db.begin() as session:
        session.add(Comment(id=comment_id, bug_id=bug.id, author_id=author_id, body=body,
                            internal=internal, created_at=at))
    return comment_id


def add_member(db: Database, project: dict[str, Any], user_id: str, role: str = "member") -> None:
    with db.begin() as session:
        session.add(Member(project_id=project["id"], user_id=user_id, role=role))


def set_tracker(client: FlaskClient, project: dict[str, Any], owner_headers: dict[str, str],
                **settings: Any) -> dict[str, Any]:
    resp = client.put(f"/api/projects/{project['slug']}/tracker", json=settings,
                      headers=owner_headers)
    assert resp.status_code == 200, resp.json
    return resp.json["data"]  # type: ignore[no-any-return]


def outbox(db: Database) -> list[tuple[str, dict[str, Any]]]:
    """(subject, data) of every staged event, oldest first."""
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(BUS.outbox.c.subject, BUS.outbox.c.payload)
                            .order_by(BUS.outbox.c.seq)).all()
    return [(subject, json.loads(payload)["data"]) for subject, payload in rows]


def count(db: Database, table: Any) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
