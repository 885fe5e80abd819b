"""Helpers of the projects and team tests: staged events, and joining a team the real way."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from bugs.models import BUS


def outbox(db: Any, subject: str | None = None) -> list[dict[str, Any]]:
    """The events staged so far (payload `data`), oldest first, optionally of one subject."""
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(BUS.outbox.c.subject, BUS.outbox.c.payload)
                            .order_by(BUS.outbox.c.seq)).all()
    return [json.loads(p)["data"] | {"_subject": s} for s, p in rows
            if subject is None or s == subject]


def join(client: Any, owner: Any, slug: str, user: Any, role: str = "member") -> None:
    """Bring `user` into the project the way people join: invited, then accepting."""
    inv = client.post(f"/api/projects/{slug}/team/invitations",
                      json={"email": user.email, "role": role}, headers=owner.headers)
    assert inv.status_code == 201, inv.json
    resp = client.post(f"/api/invitations/{inv.json['data']['token']}/accept", headers=user.headers)
    assert resp.status_code == 200, resp.json
