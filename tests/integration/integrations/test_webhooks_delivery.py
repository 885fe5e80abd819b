"""The worker's side: events from the bus become deliveries, and the delivery engine sends them
(signatures, retries with growing delays, final failures, per-target isolation, restarts,
SSRF checks at delivery time). Real PostgreSQL, NATS and local HTTP receivers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import nats as nats_client
import sqlalchemy as sa
from flask.testing import FlaskClient
from integration.integrations.receivers import Receiver
from integration.integrations.support import Project, User
from sqlmodel import col, select

from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event, utcnow
from bugnet_common.bus.worker import Worker
from bugnet_common.db import Database
from integrations.dispatch import enqueue
from integrations.models import BUS, Delivery, DeliveryAttempt
from servers import NatsInfo

MakeUser = Callable[..., User]
MakeProject = Callable[..., Project]


def add_hook(client: FlaskClient, owner: User, p: Project, url: str,
             events: list[str] | None = None) -> dict[str, Any]:
    resp = client.post(f"/api/projects/{p.slug}/webhooks", headers=owner.headers,
                       json={"url": url, "events": events or ["bug_created"]})
    assert resp.status_code == 201, resp.json
    return resp.json["data"]


def publish(nats_url: str, *events: Event) -> None:
    async def main() -> None:
        nc = await nats_client.connect(nats_url)
        js = nc.jetstream()
        for e in events:
            await js.publish(e.type, e.to_json(), headers={"Nats-Msg-Id": e.id})
        await nc.close()

    asyncio.run(main())


def snapshot(p: Project, number: int = 7, **over: Any) -> dict[str, Any]:
    bug_id = str(uuid.uuid4())
    return {"id": bug_id, "project_id": p.id, "project_slug": p.slug, "number": number,
            "title": "Crash on load", "category": "crash", "priority": "high",
            "status": "open", "source": "sdk", "is_public": False, "platform": "windows",
            "game_version": "1.0", "fingerprint": None, "assignee_id": None,
            "reporter_user_id": None, "created_at": "2026-11-28T12:00:00Z", "resolved_at": None,
            "url": f"/api/projects/{p.slug}/bugs/{bug_id}", **over}


def queue(db: Database, p: Project, n: int = 1, event: str = "bug_created") -> None:
    with db.begin() as session:
        for i in range(n):
            enqueue(session, project_id=p.id, event=event, data={"id": str(i), "number": i})


def deliveries(db: Database) -> list[Delivery]:
    with db.session() as session:
        return list(session.exec(select(Delivery).order_by(col(Delivery.created_at))).all())


def attempts(db: Database, delivery_id: str) -> list[DeliveryAttempt]:
    with db.session() as session:
        return list(session.exec(select(DeliveryAttempt)
                                 .where(DeliveryAttempt.delivery_id == delivery_id)
                                 .order_by(col(DeliveryAttempt.number))).all())


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def outbox_subjects(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return [s for (s,) in conn.execute(sa.select(BUS.outbox.c.subject))]


def test_bug_created_on_the_bus_reaches_the_webhook_signed(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        receiver: Callable[..., Receiver], worker: Worker, nats: NatsInfo) -> None:
    owner = user("Owner")
    p = project(owner)
    r = receiver()
    hook = add_hook(client, owner, p, r.url + "/in", ["bug_created", "bug_updated"])
    bug = snapshot(p)
    publish(nats.url, Event(type=subjects.BUG_CREATED, source="bugs", data={"bug": bug,
                                                                            "changes": {}}))
    (got,) = r.wait_for(1)
    body = got.json()
    assert body["event"] == "bug_created" and body["project"] == p.slug
    assert body["data"] == {"id": bug["id"], "number": 7, "title": "Crash on load",
                            "category": "crash", "priority": "high", "status": "open",
                            "url": f"https://bugnet.test/api/projects/{p.slug}/bugs/{bug['id']}"}
    mac = hmac.new(hook["secret"].encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-bugnet-signature"] == f"sha256={mac}"
    assert got.headers["x-bugnet-event"] == "bug_created"
    assert got.headers["x-bugnet-delivery"] == body["delivery_id"]
    wait_until(lambda: deliveries(worker.db)[0].status == "delivered")


def test_updates_carry_changes_and_comments_never_internal_ones(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        receiver: Callable[..., Receiver], worker: Worker, nats: NatsInfo) -> None:
    owner = user("Owner", )
    p = project(owner)
    r = receiver()
    add_hook(client, owner, p, r.url, ["bug_updated", "comment_added", "bug_resolved"])
    bug = snapshot(p, status="resolved")
    changes = {"status": {"from": "open", "to": "resolved"}}
    publish(nats.url,
            Event(type=subjects.COMMENT_ADDED, source="bugs",
                  data={"bug": bug, "comment_id": "c-internal", "body": "secret triage",
                        "internal": True, "author_id": owner.id}),
            Event(type=subjects.BUG_UPDATED, source="bugs", data={"bug": bug, "changes": changes}),
            Event(type=subjects.BUG_RESOLVED, source="bugs", data={"bug": bug, "changes": changes}),
            Event(type=subjects.COMMENT_ADDED, source="bugs",
                  data={"bug": bug, "comment_id": "c1", "body": "Fixed in 1.1", "internal": False,
                        "author_id": owner.id}),
            Event(type=subjects.BUG_CREATED, source="bugs", data={"bug": bug}))  # not subscribed
    got = r.wait_for(3)
    time.sleep(0.5)
    assert len(r.requests) == 3
    by_event = {g.json()["event"]: g.json()["data"] for g in got}
    assert set(by_event) == {"bug_updated", "bug_resolved", "comment_added"}
    assert by_event["bug_updated"]["changes"] == changes
    assert by_event["comment_added"]["comment"] == {
        "id": "c1", "body": "Fixed in 1.1", "author": {"id": owner.id, "display_name": "Owner"}}
    assert all("secret triage" not in g.body.decode() for g in r.requests)


def test_regression_detected_from_analytics_is_delivered(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        receiver: Callable[..., Receiver], worker: Worker, nats: NatsInfo) -> None:
    owner = user("Owner")
    p = project(owner)
    r = receiver()
    add_hook(client, owner, p, r.url, ["regression_detected"])
    publish(nats.url, Event(type=subjects.REGRESSION_DETECTED, source="analytics", data={
        "regression_id": "r1", "project_id": p.id, "project_slug": p.slug, "kind": "crash_rate",
        "version": "1.2", "previous_version": "1.1", "bug_id": None,
        "details": {"rate": 4.5}, "detected_at": "2026-11-28T12:00:00Z"}))
    (got,) = r.wait_for(1)
    data = got.json()["data"]
    assert data["id"] == "r1" and data["kind"] == "crash_rate" and data["version"] == "1.2"


def test_failing_receiver_is_retried_with_growing_delays_until_delivered(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        receiver: Callable[..., Receiver], worker: Worker, integrations_db: Database) -> None:
    owner = user("Owner")
    p = project(owner)
    r = receiver(statuses=[500, 503, 200])
    add_hook(client, owner, p, r.url)
    queue(integrations_db, p)
    got = r.wait_for(3)
    wait_until(lambda: deliveries(integrations_db)[0].status == "delivered")
    first, second = got[1].at - got[0].at, got[2].at - got[1].at
    assert first >= 0.2 and second > first  # base 0.2 s, doubling (+ <= 25 % jitter)
    assert len({g.headers["x-bugnet-delivery"] for g in got}) == 1
    assert len({g.body for g in got}) == 1  # every retry sends the same signed bytes
    (d,) = deliveries(integrations_db)
    assert d.attempts == 3 and d.response_code == 200 and d.next_attempt_at is None
    log = attempts(integrations_db, d.id)
    assert [(a.outcome, a.response_code) for a in log] == [("retry", 500), ("retry", 503),
                                                           ("delivered", 200)]
    time.sleep(0.5)
    assert len(r.requests) == 3


def test_client_errors_are_final_and_announced(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        receiver: Callable[..., Receiver], worker: Worker, integrations_db: Database) -> None:
    owner = user("Owner")
    p = project(owner)
    r = receiver(statuses=[410])
    hook = add_hook(client, owner, p, r.url)
    queue(integrations_db, p)
    r.wait_for(1)
    wait_until(lambda: deliveries(integrations_db)[0].status == "failed")
    time.sleep(0.6)
    assert len(r.requests) == 1
    (d,) = deliveries(integrations_db)
    assert d.attempts == 1 and d.error == "HTTP 410"
    assert subjects.WEBHOOK_DELIVERY_FAILED in outbox_subjects(integrations_db)
    listed = client.get(f"/api/projects/{p.slug}/webhooks/{hook['id']}/deliveries",
                        headers=owner.headers).json["data"]
    assert listed[0]["status"] == "failed" and listed[0]["response_code"] == 410


def test_408_and_429_are_retried_and_retry_after_is_honoured(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        receiver: Callable[..., Receiver], worker: Worker, integrations_db: Database) -> None:
    owner = user("Owner")
    p = project(owner)
    r = receiver(statuses=[408, 429, 200], headers={"Retry-After": "1"})
    add_hook(client, owner, p, r.url)
    queue(integrations_db, p)
    got = r.wait_for(3, timeout=15)
    assert got[2].at - got[1].at >= 0.95  # the receiver asked for 1 s
    wait_until(lambda: deliveries(integrations_db)[0].status == "delivered")


def test_retries_stop_at_the_end_of_the_retry_window(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        receiver: Callable[..., Receiver], worker_factory: Callable[..., Worker],
        integrations_db: Database) -> None:
    owner = user("Owner")
    p = project(owner)
    r = receiver(statuses=[500])
    add_hook(client, owner, p, r.url)
    worker_factory(delivery_retry_window_seconds=1.0)
    queue(integrations_db, p)
    wait_until(lambda: deliveries(integrations_db)[0].status == "failed", timeout=15)
    (d,) = deliveries(integrations_db)
    assert d.attempts >= 2 and d.error is not None and "retries exhausted" in d.error
    assert len(r.requests) == d.attempts


def test_a_slow_endpoint_does_not_delay_a_fast_one(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        receiver: Callable[..., Receiver], worker: Worker, integrations_db: Database) -> None:
    owner = user("Owner")
    p = project(owner)
    slow, fast = receiver(delay=2.0), receiver()
    add_hook(client, owner, p, slow.url)
    add_hook(client, owner, p, fast.url)
    t0 = time.monotonic()
    queue(integrations_db, p, n=12)
    fast_got = fast.wait_for(12, timeout=10)
    assert fast_got[-1].at - t0 < 1.9  # all fast deliveries before the first slow answer
    assert len(slow.requests) == 0
    slow.wait_for(12, timeout=20)  # 4 in flight per target: ~3 rounds of 2 s


def test_a_restarted_worker_resumes_retries_without_losing_or_doubling(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        receiver: Callable[..., Receiver], integrations_settings: Any,
        integrations_db: Database) -> None:
    from bugnet_common.testing import worker_thread
    from integrations.worker import build_worker

    owner = user("Owner")
    p = project(owner)
    r = receiver(fail_each=2)  # every delivery: 500, 500, then 200
    add_hook(client, owner, p, r.url)
    settings = integrations_settings.model_copy(update={"delivery_backoff_base_seconds": 2.0})
    queue(integrations_db, p, n=5)
    with worker_thread(build_worker(settings, integrations_db)):
        r.wait_for(5)
        wait_until(lambda: all(d.attempts == 1 for d in deliveries(integrations_db)))
    stopped = deliveries(integrations_db)
    assert all(d.status == "pending" and d.lease_until is None for d in stopped)
    assert len(r.requests) == 5
    with worker_thread(build_worker(settings, integrations_db)):
        wait_until(lambda: all(d.status == "delivered" for d in deliveries(integrations_db)),
                   timeout=30)
    done = deliveries(integrations_db)
    ids = [g.headers["x-bugnet-delivery"] for g in r.requests]
    assert sorted(ids) == sorted([d.id for d in done] * 3)  # each exactly three times
    assert all(d.attempts == 3 for d in done)


def test_a_crashed_workers_lease_is_taken_over_after_it_expires(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        receiver: Callable[..., Receiver], worker_factory: Callable[..., Worker],
        integrations_db: Database) -> None:
    owner = user("Owner")
    p = project(owner)
    r = receiver()
    add_hook(client, owner, p, r.url)
    queue(integrations_db, p)
    with integrations_db.begin() as session:  # as if a worker claimed it and died
        session.execute(sa.update(Delivery.__table__).values(  # type: ignore[attr-defined]
            lease_until=utcnow() + timedelta(seconds=1.5)))
    t0 = time.monotonic()
    worker_factory()
    r.wait_for(1, timeout=10)
    assert time.monotonic() - t0 >= 1.0
    time.sleep(0.5)
    assert len(r.requests) == 1
    assert deliveries(integrations_db)[0].status == "delivered"


def test_target_checked_again_at_delivery(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        receiver: Callable[..., Receiver], worker_factory: Callable[..., Worker],
        integrations_db: Database) -> None:
    owner = user("Owner")
    p = project(owner)
    r = receiver()
    add_hook(client, owner, p, r.url.replace("127.0.0.1", "localhost"))
    worker_factory(allowed_targets=[])  # the address is no longer allowed
    queue(integrations_db, p)
    wait_until(lambda: deliveries(integrations_db)[0].attempts >= 1)
    (d,) = deliveries(integrations_db)
    assert d.status == "pending" and d.error is not None and "not allowed" in d.error
    assert r.requests == []


def test_disabled_webhook_gets_nothing(client: FlaskClient, user: MakeUser,
                                       project: MakeProject, integrations_db: Database) -> None:
    owner = user("Owner")
    p = project(owner)
    hook = add_hook(client, owner, p, "https://hooks.example.com/x")
    client.patch(f"/api/projects/{p.slug}/webhooks/{hook['id']}", headers=owner.headers,
                 json={"enabled": False})
    queue(integrations_db, p)
    assert deliveries(integrations_db) == []


def test_body_is_json_with_the_documented_envelope(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        integrations_db: Database) -> None:
    owner = user("Owner")
    p = project(owner)
    add_hook(client, owner, p, "https://hooks.example.com/x", ["alert_triggered"])
    with integrations_db.begin() as session:
        enqueue(session, project_id=p.id, event="alert_triggered", data={"name": "Crashes"})
    (d,) = deliveries(integrations_db)
    assert set(json.loads(d.body)) == {"event", "project", "timestamp", "delivery_id", "data"}


def test_delivery_goes_to_the_checked_address_with_the_host_name(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        receiver: Callable[..., Receiver], worker: Worker, integrations_db: Database) -> None:
    owner = user("Owner")
    p = project(owner)
    r = receiver()
    url = r.url.replace("127.0.0.1", "localhost")
    add_hook(client, owner, p, url + "/path")
    queue(integrations_db, p)
    (got,) = r.wait_for(1)
    assert got.headers["host"] == url.removeprefix("http://") and got.path == "/path"


def test_finished_deliveries_are_pruned_after_the_retention(
        client: FlaskClient, user: MakeUser, project: MakeProject,
        integrations_settings: Any, integrations_db: Database) -> None:
    from integrations.delivery.engine import DeliveryEngine

    owner = user("Owner")
    p = project(owner)
    add_hook(client, owner, p, "https://hooks.example.com/x")
    queue(integrations_db, p, n=3)
    old = utcnow() - timedelta(days=31)
    ids = [d.id for d in deliveries(integrations_db)]
    table = Delivery.__table__  # type: ignore[attr-defined]
    with integrations_db.begin() as session:
        session.execute(sa.update(table).where(table.c.id == ids[0])
                        .values(status="delivered", created_at=old))
        session.execute(sa.update(table).where(table.c.id == ids[1])
                        .values(status="pending", created_at=old))
        session.execute(sa.update(table).where(table.c.id == ids[2]).values(status="failed"))
    engine = DeliveryEngine(settings=integrations_settings, db=integrations_db)
    assert engine.prune() == 1
    assert sorted(d.id for d in deliveries(integrations_db)) == sorted(ids[1:])
