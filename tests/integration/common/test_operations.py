"""Operations against a real PostgreSQL and NATS: the outbox backlog read at scrape time, a
worker's /metrics and /healthz (consumer lag, events handled, rows published), and the request
id carried from an HTTP request through the outbox and the bus into a handler's log lines."""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
import uuid
from types import SimpleNamespace
from typing import Any

import httpx
import nats as nats_client
import pytest
import sqlalchemy as sa
from e2e.support import wait_for
from flask import Blueprint, current_app

from bugnet_common import metrics
from bugnet_common.bus.events import Event
from bugnet_common.bus.inbox import Consumer
from bugnet_common.bus.outbox import add_event
from bugnet_common.bus.tables import bus_tables
from bugnet_common.bus.worker import Worker
from bugnet_common.db import Database
from bugnet_common.logs import configure_logging
from bugnet_common.settings import ServiceSettings
from bugnet_common.testing import worker_thread
from bugnet_common.web import create_service_app, ok
from servers import NatsInfo, PostgresInfo

METADATA = sa.MetaData()
TABLES = bus_tables(METADATA)


def samples(text: str, name: str, **labels: str) -> list[float]:
    return [v for n, got, v in metrics.parse_exposition(text)
            if n == name and all(got.get(k) == want for k, want in labels.items())]


wait_until = functools.partial(wait_for, timeout=15.0, step=0.05)


def subject() -> str:
    # Inside the BUGS stream (bugnet.bugs.>), unique to the test: no other consumer sees it.
    return f"bugnet.bugs.v1.ops_test_{uuid.uuid4().hex[:10]}"


def publish(url: str, events: list[Event]) -> None:
    async def main() -> None:
        nc = await nats_client.connect(url)
        js = nc.jetstream()
        for e in events:
            await js.publish(e.type, e.to_json(), headers={"Nats-Msg-Id": e.id})
        await nc.close()

    asyncio.run(main())


# ---- the outbox backlog ---------------------------------------------------------------------

def stage(db: Database, n: int) -> list[str]:
    with db.begin() as session:
        return [add_event(session, TABLES, Event(type="bugnet.bugs.v1.x", source="bugs",
                                                  data={"n": i})).id for i in range(n)]


def backlog_app(service: str, db: Database):  # type: ignore[no-untyped-def]
    app = create_service_app(service, ServiceSettings())
    # What Runtime.init_app attaches: the collector needs only its database and tables.
    app.extensions["bugnet.runtime"] = SimpleNamespace(db=db, tables=TABLES)
    return app


def test_outbox_backlog_and_oldest_age_are_read_at_scrape_time(clean: Database) -> None:
    service = f"ops{uuid.uuid4().hex[:6]}"
    client = backlog_app(service, clean).test_client()
    text = client.get("/metrics").get_data(as_text=True)
    assert samples(text, "bugnet_outbox_backlog", service=service) == [0]
    assert samples(text, "bugnet_outbox_oldest_age_seconds", service=service) == [0]

    ids = stage(clean, 3)
    with clean.begin() as session:  # the oldest row waits since a while
        session.execute(sa.update(TABLES.outbox).where(TABLES.outbox.c.id == ids[0])
                        .values(created_at=sa.func.now() - sa.text("interval '90 seconds'")))
    text = client.get("/metrics").get_data(as_text=True)
    assert samples(text, "bugnet_outbox_backlog", service=service) == [3]
    (age,) = samples(text, "bugnet_outbox_oldest_age_seconds", service=service)
    assert 89 <= age < 200

    with clean.begin() as session:
        session.execute(sa.update(TABLES.outbox).values(published_at=sa.func.now()))
    text = client.get("/metrics").get_data(as_text=True)
    assert samples(text, "bugnet_outbox_backlog", service=service) == [0]


def test_an_unreachable_database_leaves_the_backlog_out_without_failing_the_scrape(
        pg: PostgresInfo) -> None:
    from servers import free_port

    service = f"ops{uuid.uuid4().hex[:6]}"
    dead = Database(f"postgresql+psycopg://nobody:x@127.0.0.1:{free_port()}/none")
    try:
        client = backlog_app(service, dead).test_client()
        metrics.observe_request(service, "GET", "/api/x", 200, 0.01)
        resp = client.get("/metrics")
        assert resp.status_code == 200
        text = resp.get_data(as_text=True)
        assert samples(text, "bugnet_outbox_backlog", service=service) == []
        assert samples(text, "bugnet_http_requests_total", service=service, route="/api/x") == [1]
    finally:
        dead.engine.dispose()


# ---- a worker's metrics server ----------------------------------------------------------------

def test_worker_metrics_show_consumer_lag_while_messages_wait(clean: Database,
                                                              nats: NatsInfo) -> None:
    subj = subject()
    durable = f"ops-lag-{uuid.uuid4().hex[:8]}"
    release = threading.Event()
    seen: list[str] = []

    def slow(*, session: Any, event: Event) -> None:
        seen.append(event.id)
        release.wait(30)

    worker = Worker(service="opsworker", nats_url=nats.url, db=clean, tables=TABLES,
                    consumers=[Consumer(durable=durable, stream="BUGS", subjects=[subj],
                                        handler=slow, batch=1)],
                    metrics_address=("127.0.0.1", 0), lag_seconds=0.2)
    with worker_thread(worker):
        assert worker.metrics_server is not None
        base = f"http://127.0.0.1:{worker.metrics_server.port}"
        assert httpx.get(base + "/healthz").status_code == 200
        publish(nats.url, [Event(type=subj, source="bugs", data={"n": i}) for i in range(6)])

        def pending() -> float:
            text = httpx.get(base + "/metrics").text
            found = samples(text, "bugnet_consumer_pending", service="opsworker",
                            consumer=durable)
            return found[0] if found else 0.0

        # One message is in the handler (fetched one at a time): the other five wait.
        assert wait_until(lambda: pending() == 5)
        text = httpx.get(base + "/metrics").text
        assert samples(text, "bugnet_consumer_ack_pending", service="opsworker",
                       consumer=durable) == [1]
        release.set()
        wait_until(lambda: pending() == 0 and samples(
            httpx.get(base + "/metrics").text, "bugnet_events_handled_total",
            service="opsworker", consumer=durable, outcome="ok") == [6])
        assert len(seen) == 6
    # Stopped with the worker.
    with pytest.raises(httpx.TransportError):
        httpx.get(base + "/healthz", timeout=2)


def test_worker_health_follows_its_nats_connection(clean: Database, nats: NatsInfo) -> None:
    worker = Worker(service="opsworker", nats_url=nats.url, db=clean, tables=TABLES,
                    relay=False)
    assert worker.health() == (False, "starting")
    with worker_thread(worker):
        assert worker.health() == (True, "ok")
    assert worker.health() == (False, "NATS not connected")


def test_relay_counts_published_rows(clean: Database, nats: NatsInfo) -> None:
    service = f"opsrelay{uuid.uuid4().hex[:6]}"
    stage(clean, 4)
    worker = Worker(service=service, nats_url=nats.url, db=clean, tables=TABLES)
    with worker_thread(worker):
        wait_until(lambda: samples(metrics.exposition().decode(),
                                   "bugnet_outbox_published_total", service=service) == [4])


# ---- the request id, from a request to a handler's log lines ------------------------------

def test_request_id_flows_from_the_request_through_the_bus_into_handler_logs(
        clean: Database, nats: NatsInfo, capsys: pytest.CaptureFixture[str]) -> None:
    subj = subject()
    bp = Blueprint("ops", __name__)

    @bp.post("/api/things")
    def create_thing():  # type: ignore[no-untyped-def]
        db: Database = current_app.extensions["ops.db"]
        with db.begin() as session:  # the event is created here, with no id passed
            add_event(session, TABLES, Event(type=subj, source="bugs", data={"thing": 1}))
        return ok({}, 201)

    app = create_service_app("opsapi", ServiceSettings(), blueprints=[bp])
    app.extensions["ops.db"] = clean
    request_id = f"ops-req-{uuid.uuid4().hex}"
    resp = app.test_client().post("/api/things", headers={"X-Request-Id": request_id})
    assert resp.status_code == 201 and resp.headers["X-Request-Id"] == request_id

    with clean.engine.connect() as conn:
        (payload,) = conn.execute(sa.select(TABLES.outbox.c.payload)).scalars()
    assert json.loads(payload)["correlation_id"] == request_id

    import logging

    handler_log = logging.getLogger("ops.handler")
    handled = threading.Event()

    def handler(*, session: Any, event: Event) -> None:
        handler_log.info("thing handled", extra={"event_id": event.id})
        handled.set()

    configure_logging("opsworker")
    worker = Worker(service="opsworker", nats_url=nats.url, db=clean, tables=TABLES,
                    consumers=[Consumer(durable=f"ops-corr-{uuid.uuid4().hex[:8]}",
                                        stream="BUGS", subjects=[subj], handler=handler)])
    with worker_thread(worker):
        assert handled.wait(15)
        time.sleep(0.2)  # the worker's own next lines come after the handler's
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()
             if line.startswith("{")]
    ours = [line for line in lines if line.get("message") == "thing handled"]
    assert len(ours) == 1 and ours[0]["request_id"] == request_id
    # Bound only while the handler ran: the worker's other lines carry no request id.
    started = [line for line in lines if line.get("message") == "worker started"]
    assert started and all("request_id" not in line for line in started)
