"""Outbox relay, inbox consumer and the revocation mirror against a real PostgreSQL and NATS."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

import nats as nats_client
import pytest
import sqlalchemy as sa

from bugnet_common.bus import subjects
from bugnet_common.bus.client import BusThread
from bugnet_common.bus.events import Event
from bugnet_common.bus.inbox import Consumer, PoisonMessage
from bugnet_common.bus.nats_io import ensure_kv
from bugnet_common.bus.outbox import OutboxRelay, add_event
from bugnet_common.bus.tables import bus_tables
from bugnet_common.bus.worker import Worker
from bugnet_common.db import Database
from bugnet_common.testing import worker_thread
from servers import NatsInfo

METADATA = sa.MetaData()
TABLES = bus_tables(METADATA)
EFFECTS = sa.Table("effects", METADATA, sa.Column("event_id", sa.Text, primary_key=True),
                   sa.Column("consumer", sa.Text, nullable=False))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def stream_events(url: str, stream: str, subject: str) -> list[Event]:
    nc = await nats_client.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(subject, stream=stream)
        out: list[Event] = []
        while True:
            try:
                msgs = await sub.fetch(100, timeout=0.5)
            except Exception:
                break
            for m in msgs:
                out.append(Event.from_json(m.data))
                await m.ack()
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


def unpublished(db: Database) -> int:
    with db.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(TABLES.outbox)
                            .where(TABLES.outbox.c.published_at.is_(None))).scalar_one()


def stage(db: Database, n: int, subject: str) -> list[Event]:
    events = [Event(type=subject, source="test", data={"n": i, "marker": str(uuid.uuid4())})
              for i in range(n)]
    with db.begin() as session:
        for event in events:
            add_event(session, TABLES, event)
    return events


def wait_until(check: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def test_rolled_back_transaction_leaves_no_event(clean: Database) -> None:
    with pytest.raises(RuntimeError), clean.begin() as session:
        add_event(session, TABLES, Event(type=subjects.BUG_CREATED, source="t", data={}))
        raise RuntimeError("business rule failed")
    assert unpublished(clean) == 0


def test_relay_publishes_in_order_and_marks_rows(clean: Database, nats: NatsInfo) -> None:
    subject = subjects.BUG_OCCURRED
    events = stage(clean, 50, subject)
    worker = Worker(service="t-relay", nats_url=nats.url, db=clean, tables=TABLES)
    with worker_thread(worker):
        assert wait_until(lambda: unpublished(clean) == 0, 10)
    got = [e for e in run(stream_events(nats.url, "BUGS", subject))
           if e.source == "test" and e.id in {x.id for x in events}]
    assert [e.id for e in got] == [e.id for e in events]


def test_republishing_the_same_row_is_deduplicated_by_msg_id(clean: Database, nats: NatsInfo) -> None:
    subject = subjects.BUG_DELETED
    (event,) = stage(clean, 1, subject)
    worker = Worker(service="t-dedupe", nats_url=nats.url, db=clean, tables=TABLES)
    with worker_thread(worker):
        assert wait_until(lambda: unpublished(clean) == 0, 10)
        with clean.begin() as session:  # as if the mark-sent commit had been lost
            session.execute(sa.update(TABLES.outbox).values(published_at=None))
        assert wait_until(lambda: unpublished(clean) == 0, 10)
    got = [e for e in run(stream_events(nats.url, "BUGS", subject)) if e.id == event.id]
    assert len(got) == 1


class Recorder:
    """A handler that acts only on the events of its own test (the stream outlives tests)."""

    def __init__(self, ids: set[str], fail_times: int = 0, poison: bool = False) -> None:
        self.ids = ids
        self.calls: list[str] = []
        self.fail_times = fail_times
        self.poison = poison
        self.lock = threading.Lock()

    def __call__(self, *, session: Any, event: Event) -> None:
        if event.id not in self.ids:
            return
        with self.lock:
            self.calls.append(event.id)
            if self.poison:
                raise PoisonMessage("cannot ever apply this")
            if len(self.calls) <= self.fail_times:
                raise ConnectionError("transient")
        session.execute(sa.insert(EFFECTS).values(event_id=event.id, consumer="c"))


def effects(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(sa.select(EFFECTS.c.event_id)).scalars())


async def publish(url: str, events: list[Event], *, twice: bool = False) -> None:
    nc = await nats_client.connect(url)
    js = nc.jetstream()
    for event in events:
        await js.publish(event.type, event.to_json())
        if twice:  # a redelivery the dedupe window cannot catch: no Nats-Msg-Id
            await js.publish(event.type, event.to_json())
    await nc.close()


def consumer_worker(db: Database, url: str, handler: Recorder, subject: str) -> Worker:
    name = f"t-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(durable=name, stream="AUTH", subjects=[subject], handler=handler,
                        backoff=[0.1], max_deliver=3)
    return Worker(service=name, nats_url=url, db=db, tables=TABLES, consumers=[consumer],
                  relay=False)


def test_inbox_applies_each_event_once(clean: Database, nats: NatsInfo) -> None:
    subject = subjects.USER_UPDATED
    events = [Event(type=subject, source="t", data={}) for _ in range(5)]
    handler = Recorder({e.id for e in events})
    run(publish(nats.url, events, twice=True))
    worker = consumer_worker(clean, nats.url, handler, subject)
    with worker_thread(worker):
        assert wait_until(lambda: len(handler.calls) >= 5 and len(effects(clean)) >= 5, 10)
        time.sleep(0.5)
    assert sorted(effects(clean)) == sorted(e.id for e in events)


def test_transient_failure_is_retried_then_applied(clean: Database, nats: NatsInfo) -> None:
    subject = subjects.USER_REGISTERED
    event = Event(type=subject, source="t", data={})
    handler = Recorder({event.id}, fail_times=2)
    run(publish(nats.url, [event]))
    with worker_thread(consumer_worker(clean, nats.url, handler, subject)):
        assert wait_until(lambda: effects(clean) == [event.id], 10)
    assert handler.calls == [event.id] * 3


def test_poison_and_undecodable_messages_are_parked(clean: Database, nats: NatsInfo) -> None:
    subject = subjects.USER_DELETED
    event = Event(type=subject, source="t", data={})
    handler = Recorder({event.id}, poison=True)

    async def send() -> None:
        nc = await nats_client.connect(nats.url)
        js = nc.jetstream()
        await js.publish(subject, event.to_json())
        await js.publish(subject, b"\xff not an event")
        await nc.close()

    run(send())
    with worker_thread(consumer_worker(clean, nats.url, handler, subject)):
        def parked() -> list[Any]:
            with clean.engine.connect() as conn:
                return list(conn.execute(sa.select(TABLES.parked.c.event_id, TABLES.parked.c.error)))
        assert wait_until(lambda: len(parked()) >= 2, 10)
    rows = parked()
    assert event.id in {r.event_id for r in rows}
    assert any(r.event_id is None and r.error.startswith("undecodable") for r in rows)
    assert effects(clean) == []


def test_revocation_reaches_a_watching_process_within_a_second(nats: NatsInfo) -> None:
    bucket = f"revoked_{uuid.uuid4().hex[:8]}"
    bus = BusThread(nats.url, "watcher", revocation_bucket=bucket).start()
    try:
        assert bus.revocations.synced.wait(5)

        async def revoke() -> float:
            nc = await nats_client.connect(nats.url)
            kv = await ensure_kv(nc.jetstream(), bucket)
            started = time.monotonic()
            await kv.put("sid-1", str(time.time() + 600).encode())
            await nc.close()
            return started

        started = run(revoke())
        assert wait_until(lambda: "sid-1" in bus.revocations, 1.0, interval=0.005)
        assert time.monotonic() - started < 1.0
    finally:
        bus.stop()


def test_export_gather_collects_each_service_until_the_deadline(clean: Database, nats: NatsInfo) -> None:
    def part(name: str) -> Any:
        return lambda req: {"who": name, "user": req.user_id}

    workers = [Worker(service=n, nats_url=nats.url, db=clean, tables=TABLES, export=part(n),
                      relay=False) for n in ("svc-a", "svc-b")]
    bus = BusThread(nats.url, "gatherer").start()
    try:
        assert bus.wait_connected(5)
        with worker_thread(workers[0]), worker_thread(workers[1]):
            started = time.monotonic()
            replies = bus.gather(subjects.EXPORT_REQUESTED, {"user_id": "u1", "email": "e"},
                                 expected={"svc-a", "svc-b"}, timeout=3)
            assert time.monotonic() - started < 1.0  # returns as soon as all have answered
            partial = bus.gather(subjects.EXPORT_REQUESTED, {"user_id": "u1", "email": "e"},
                                 expected={"svc-a", "svc-b", "svc-c"}, timeout=0.5)
    finally:
        bus.stop()
    assert replies["svc-a"]["data"] == {"who": "svc-a", "user": "u1"}
    assert replies["svc-b"]["ok"] is True
    assert {"svc-a", "svc-b"} <= set(partial) and "svc-c" not in partial


def test_relay_prunes_rows_published_long_ago(clean: Database) -> None:
    old, fresh = stage(clean, 2, subjects.BUG_UPDATED)
    with clean.begin() as session:
        session.execute(sa.update(TABLES.outbox).where(TABLES.outbox.c.id == old.id)
                        .values(published_at=sa.func.now() - sa.text("interval '2 days'")))
    relay = OutboxRelay(clean, TABLES, js=None)
    assert relay.prune() == 1
    with clean.engine.connect() as conn:
        left = set(conn.execute(sa.select(TABLES.outbox.c.id)).scalars())
    assert left == {fresh.id}


def test_relay_wakes_on_commit_instead_of_polling(clean: Database, nats: NatsInfo) -> None:
    worker = Worker(service="t-notify", nats_url=nats.url, db=clean, tables=TABLES)
    with worker_thread(worker):
        time.sleep(1.5)  # let the relay go idle on its LISTEN connection
        started = time.monotonic()
        stage(clean, 1, subjects.BUG_RESOLVED)
        assert wait_until(lambda: unpublished(clean) == 0, 5, interval=0.01)
        latency = time.monotonic() - started
    assert latency < 0.5, f"relay took {latency:.3f}s: it polled instead of waking on NOTIFY"


class PartlyFailing(Recorder):
    """Writes its effect, then fails for the event `failing` its first `times` calls: each
    failed effect must roll back while the rest of the batch commits."""

    def __init__(self, ids: set[str], failing: str, times: int) -> None:
        super().__init__(ids)
        self.failing, self.times = failing, times

    def __call__(self, *, session: Any, event: Event) -> None:
        if event.id not in self.ids:
            return
        with self.lock:
            self.calls.append(event.id)
            fail = event.id == self.failing and self.calls.count(event.id) <= self.times
        session.execute(sa.insert(EFFECTS).values(event_id=event.id, consumer="c"))
        if fail:
            raise ConnectionError("transient, after writing")


def test_a_failing_event_is_retried_alone_while_its_batch_commits(
        clean: Database, nats: NatsInfo) -> None:
    """The batch runs once without savepoints; the failure rolls it back and it runs again with
    a savepoint per event, where the bad event fails alone (nak) and the others commit. The
    redelivery then applies the bad event."""
    subject = subjects.USER_UPDATED
    events = [Event(type=subject, source="t", data={}) for _ in range(6)]
    bad = events[2].id
    handler = PartlyFailing({e.id for e in events}, failing=bad, times=2)
    with worker_thread(consumer_worker(clean, nats.url, handler, subject)):
        run(publish(nats.url, events))
        assert wait_until(lambda: len(effects(clean)) == 6, 10)
        time.sleep(0.3)
    assert sorted(effects(clean)) == sorted(e.id for e in events)  # each once: no leftover
    assert handler.calls.count(bad) == 3
    assert all(handler.calls.count(e.id) <= 2 for e in events if e.id != bad)
    with clean.engine.connect() as conn:
        inbox = conn.execute(sa.select(sa.func.count()).select_from(TABLES.inbox).where(
            TABLES.inbox.c.event_id.in_([e.id for e in events]))).scalar_one()
    assert inbox == 6


def test_a_batch_waits_out_an_unavailable_database_without_spending_deliveries(
        clean: Database, nats: NatsInfo) -> None:
    """The inbox table is locked by another session for 3 s, so every transaction of the
    consumer fails (lock_timeout). The batch must be retried in place, not nak'ed towards
    max_deliver (3 here): all events applied once, none parked, none redelivered."""
    subject = subjects.USER_REGISTERED
    events = [Event(type=subject, source="t", data={}) for _ in range(4)]
    handler = Recorder({e.id for e in events})
    url = clean.engine.url.update_query_dict({"options": "-c lock_timeout=200"})
    impatient = Database(url.render_as_string(hide_password=False))
    worker = consumer_worker(impatient, nats.url, handler, subject)
    try:
        with clean.engine.connect() as locker:
            locker.execute(sa.text("LOCK TABLE inbox IN ACCESS EXCLUSIVE MODE"))
            with worker_thread(worker):
                run(publish(nats.url, events))
                time.sleep(3)
                locker.rollback()  # the database is back
                assert wait_until(lambda: len(effects(clean)) == 4, 15)
                time.sleep(0.5)  # the acks are sent without waiting for a reply
                info = run(_consumer_info(nats.url, worker.consumers[0].durable))
    finally:
        impatient.engine.dispose()
    assert sorted(effects(clean)) == sorted(e.id for e in events)
    with clean.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(TABLES.parked)).scalar_one() == 0
    assert info.num_redelivered == 0
    assert info.num_ack_pending == 0


async def _consumer_info(url: str, durable: str) -> Any:
    nc = await nats_client.connect(url)
    try:
        return await nc.jetstream().consumer_info("AUTH", durable)
    finally:
        await nc.close()
