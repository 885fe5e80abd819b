"""A report stored by the batched SDK path keeps its own request's id on its event, though a
writer thread stores it together with other requests' reports."""

from __future__ import annotations

import json

import sqlalchemy as sa

from bugnet_common.bus import subjects
from bugs.models import BUS


def test_each_batched_report_event_carries_its_own_request_id(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    key = str(project(user("Owner"))["api_key"])
    sent = {}
    for rid, title in (("req-plain-000001", "Door does not open"),
                       ("req-crash-000002", "[Error] NullReference in Save()")):
        resp = client.post("/api/bugs/submit", headers={"X-API-Key": key, "X-Request-Id": rid},
                           json={"title": title, "description": "steps", "category": "gameplay"})
        assert resp.status_code == 201, resp.json
        sent[resp.json["data"]["id"]] = rid

    with bugs_db.engine.connect() as conn:
        rows = conn.execute(sa.select(BUS.outbox.c.payload)
                            .where(BUS.outbox.c.subject == subjects.BUG_CREATED)).all()
    by_bug = {json.loads(p)["data"]["bug"]["id"]: json.loads(p)["correlation_id"] for (p,) in rows}
    assert {bug: by_bug[bug] for bug in sent} == sent
