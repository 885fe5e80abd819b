"""Bench: webhook fan-out — 1,000 bug events to 3 webhooks, one of them slow.

Starts PostgreSQL and NATS (`bugnet_stack`, components postgres + nats) on free ports in a
scratch directory, migrates the integrations database, starts the real integrations worker
(`python -m integrations.worker`, its default delivery settings) and four local HTTP
receivers in this process: three answer at once, one (`--slow-delay`, default 0.2 s) slowly.
It then runs two scenarios with the same amount of work, each on a fresh project whose three
webhooks subscribe to bug_created:
  1. baseline   three fast webhooks;
  2. fan-out    two of the fast webhooks and the slow one.
Each scenario publishes `--events` `bug_created` events to JetStream (as the bugs service's
outbox relay would) at `--rate` per second (default 40: 120 deliveries/s, below what the worker
sustains on a busy 2-core machine, so latency is not mere queueing; `--rate 0` publishes them
all at once to measure throughput) and waits until every delivery was received. The slow
receiver, at 4 in flight, takes 1000 x 0.2 / 4 = 50 s: a backlog that must not hold back the
fast ones. It reports the time until
the fast receivers had everything, until all had, the deliveries per second, and the fast
receivers' latency (from the payload's enqueue `timestamp` to arrival) p50/p99 over the two
fast receivers both scenarios share — the ratio of fan-out to baseline is the figure that shows
whether the slow endpoint delays the fast ones.
Every delivery must arrive exactly once; a missing or doubled one fails the bench.

Run from the repository root:  .venv/bin/python -m bench.webhook_fanout [--events 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import nats as nats_client
import sqlalchemy as sa

from bench.auth_me import (
    Terminated,
    _on_sigterm,
    data_directory,
    load_average,
    machine_facts,
    progress,
)
from bugnet_common.bus.events import Event, utcnow
from bugnet_common.db import Database, migrate
from bugnet_stack import Ports, Stack
from integrations import crypto
from integrations.migrate import MIGRATIONS
from integrations.models import ProjectRef, Webhook
from integrations.settings import IntegrationsSettings


@dataclass
class Options:
    events: int
    slow_delay: float
    timeout: float
    keep: bool
    worker_log: str | None
    rate: float


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_fanout",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1000, help="bug events per scenario")
    parser.add_argument("--slow-delay", type=float, default=0.2,
                        help="seconds the slow receiver takes to answer")
    parser.add_argument("--rate", type=float, default=40.0,
                        help="events published per second (0: all at once)")
    parser.add_argument("--fanout-timeout", dest="timeout", type=float, default=600.0,
                        help="give up a scenario after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--worker-log", default=None, help="append the worker's logs here")
    # `python -m bench` passes every benchmark the same arguments: ignore the others'.
    opts, _ = parser.parse_known_args(argv)
    return Options(events=opts.events, slow_delay=opts.slow_delay, timeout=opts.timeout,
                   keep=opts.keep, worker_log=opts.worker_log,
                   rate=opts.rate)


# ---- receivers ------------------------------------------------------------------------------

@dataclass
class Sink:
    """A local webhook receiver: records (delivery id, latency in s) of each request."""

    name: str
    delay: float = 0.0
    got: list[tuple[str, float]] = field(default_factory=list)
    last_at: float = 0.0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if sink.delay:
                    time.sleep(sink.delay)
                now = time.time()
                doc = json.loads(body)
                sent = datetime.fromisoformat(doc["timestamp"].replace("Z", "+00:00")).timestamp()
                with sink.lock:
                    sink.got.append((doc["delivery_id"], now - sent))
                    sink.last_at = time.monotonic()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 128
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def reset(self) -> None:
        with self.lock:
            self.got.clear()
            self.last_at = 0.0

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---- scenario -------------------------------------------------------------------------------

@dataclass
class Row:
    name: str
    webhooks: int
    fast_done_s: float
    all_done_s: float
    deliveries: int
    fast_p50_ms: float
    fast_p99_ms: float
    slow_done_s: float | None
    enqueued_s: float  # until the worker had turned every event into deliveries


def add_project(db: Database, settings: IntegrationsSettings, sinks: list[Sink]) -> str:
    project_id = str(uuid.uuid4())
    with db.begin() as session:
        session.add(ProjectRef(id=project_id, slug=f"bench-{project_id[:8]}", name="Bench"))
        session.flush()
        for sink in sinks:
            session.add(Webhook(id=str(uuid.uuid4()), project_id=project_id, url=sink.url,
                                events=["bug_created"],
                                secret_encrypted=crypto.encrypt(settings.secret(), "benchsecret")))
    return project_id


def publish(nats_url: str, project_id: str, n: int, rate: float) -> None:
    """`n` bug_created events, `rate` per second (in steps of 50 ms), or all at once."""
    async def main() -> None:
        nc = await nats_client.connect(nats_url)
        js = nc.jetstream()
        acks: list[Any] = []
        start = time.monotonic()
        for i in range(n):
            if rate > 0 and i % max(1, int(rate / 20)) == 0:
                await asyncio.gather(*acks)
                acks = []
                ahead = start + i / rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            bug_id = str(uuid.uuid4())
            e = Event(type="bugnet.bugs.v1.bug_created", source="bugs", data={"bug": {
                "id": bug_id, "project_id": project_id, "project_slug": "bench", "number": i + 1,
                "title": f"Bench bug {i}", "category": "crash", "priority": "high",
                "status": "open", "url": f"/api/projects/bench/bugs/{bug_id}"}, "changes": {}})
            acks.append(js.publish(e.type, e.to_json(), headers={"Nats-Msg-Id": e.id}))
            if len(acks) >= 200:
                await asyncio.gather(*acks)
                acks = []
        await asyncio.gather(*acks)
        await nc.close()

    asyncio.run(main())


def scenario(name: str, *, opts: Options, db: Database, settings: IntegrationsSettings,
             nats_url: str, fast: list[Sink], third: Sink, slow: Sink | None) -> Row:
    """`fast` (measured) and `third` (a third fast one, or the slow one when `slow`)."""
    sinks = [*fast, third]
    for s in sinks:
        s.reset()
    project_id = add_project(db, settings, sinks)
    progress(f"{name}: publishing {opts.events} bug_created events to {len(sinks)} webhooks")
    t0, wall0 = time.monotonic(), time.time()
    publish(nats_url, project_id, opts.events, opts.rate)
    deadline = t0 + opts.timeout
    fast_done = None
    while time.monotonic() < deadline:
        if fast_done is None and all(len(s.got) >= opts.events for s in fast):
            fast_done = max(s.last_at for s in fast) - t0
        if all(len(s.got) >= opts.events for s in sinks):
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"{name}: not all deliveries arrived within {opts.timeout} s "
                           f"({[len(s.got) for s in sinks]})")
    all_done = max(s.last_at for s in sinks) - t0
    time.sleep(1.0)  # anything doubled would arrive now
    for s in sinks:
        counts = Counter(d for d, _ in s.got)
        doubled = [d for d, c in counts.items() if c > 1]
        if len(counts) != opts.events or doubled:
            raise RuntimeError(f"{name}: {s.name} got {len(counts)} distinct deliveries, "
                               f"{len(doubled)} doubled")
    with db.engine.connect() as conn:
        last = conn.execute(sa.text("SELECT max(created_at) FROM deliveries WHERE project_id = :p"),
                            {"p": project_id}).scalar_one()
    latencies = sorted(lat for s in fast for _, lat in s.got)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    assert fast_done is not None
    return Row(name=name, webhooks=len(sinks), fast_done_s=fast_done, all_done_s=all_done,
               deliveries=sum(len(s.got) for s in sinks),
               fast_p50_ms=statistics.median(latencies) * 1000, fast_p99_ms=p99 * 1000,
               slow_done_s=(slow.last_at - t0) if slow else None,
               enqueued_s=last.timestamp() - wall0)


def run(opts: Options) -> list[Row]:
    with data_directory(opts.keep) as data_dir:
        stack = Stack(data_dir=data_dir, ports=Ports.free(), components=("postgres", "nats"),
                      durable=False)
        worker: subprocess.Popen[bytes] | None = None
        sinks: list[Sink] = []
        try:
            progress("starting PostgreSQL and NATS")
            stack.up(timeout=120)
            url = stack.database_url("integrations")
            migrate(script_location=MIGRATIONS, url=url)
            env = {**os.environ, **stack.service_env("integrations"),
                   "INTEGRATIONS_ALLOWED_TARGETS": '["127.0.0.0/8"]', "INTEGRATIONS_ENV": "dev",
                   "INTEGRATIONS_LOG_LEVEL": "INFO" if opts.worker_log else "WARNING"}
            settings = IntegrationsSettings(database_url=url, env="dev")  # type: ignore[arg-type]
            db = Database(url, pool_size=2)
            progress("starting the integrations worker")
            log_file = open(opts.worker_log, "ab") if opts.worker_log else None  # noqa: SIM115
            worker = subprocess.Popen([sys.executable, "-m", "integrations.worker"], env=env,
                                      stdout=log_file or subprocess.DEVNULL,
                                      stderr=log_file or subprocess.DEVNULL)
            wait_worker_ready(stack.urls.nats)
            fast = [Sink("fast-1"), Sink("fast-2")]
            fast3 = Sink("fast-3")
            slow = Sink("slow", delay=opts.slow_delay)
            sinks = [*fast, fast3, slow]
            rows = [scenario("baseline (3 fast webhooks)", opts=opts, db=db, settings=settings,
                             nats_url=stack.urls.nats, fast=fast, third=fast3, slow=None),
                    scenario("fan-out (2 fast + 1 slow)", opts=opts, db=db, settings=settings,
                             nats_url=stack.urls.nats, fast=fast, third=slow, slow=slow)]
            with db.engine.connect() as conn:
                pending = conn.execute(sa.text(
                    "SELECT count(*) FROM deliveries WHERE status <> 'delivered'")).scalar()
            if pending:
                raise RuntimeError(f"{pending} deliveries not marked delivered")
            db.engine.dispose()
            return rows
        finally:
            for s in sinks:
                s.stop()
            if worker is not None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(20)
                except subprocess.TimeoutExpired:
                    worker.kill()
            stack.down()


def wait_worker_ready(nats_url: str, timeout: float = 30.0) -> None:
    """Until the worker's bug-events consumer exists (it then sees every event published)."""
    async def check() -> bool:
        nc = await nats_client.connect(nats_url)
        try:
            await nc.jetstream().consumer_info("BUGS", "integrations-events")
            return True
        except Exception:
            return False
        finally:
            await nc.close()

    deadline = time.monotonic() + timeout
    while not asyncio.run(check()):
        if time.monotonic() > deadline:
            raise RuntimeError("the integrations worker did not start")
        time.sleep(0.2)


def report(rows: list[Row], opts: Options, facts: list[str]) -> str:
    base = rows[0]
    lines = [
        f"webhook fan-out: {opts.events} bug_created events per scenario"
        f"{f' at {opts.rate:.0f}/s' if opts.rate else ' at once'}; slow receiver answers "
        f"in {opts.slow_delay:.2f} s; worker defaults (4 in flight per target, 64 in all)",
        "",
        f"{'scenario':<28} {'hooks':>5} {'enqueued s':>10} {'fast done s':>11} {'all done s':>10} "
        f"{'deliv/s':>8} {'fast p50 ms':>11} {'fast p99 ms':>11} {'p50 ratio':>9}",
    ]
    footnote = "fast: the two fast receivers both scenarios share"
    for r in rows:
        lines.append(
            f"{r.name:<28} {r.webhooks:>5} {r.enqueued_s:>10.2f} {r.fast_done_s:>11.2f} {r.all_done_s:>10.2f} "
            f"{r.deliveries / r.all_done_s:>8.0f} {r.fast_p50_ms:>11.0f} {r.fast_p99_ms:>11.0f} "
            f"{r.fast_p50_ms / base.fast_p50_ms:>9.2f}")
    fan = rows[-1]
    lines += ["",
              f"fast receivers done after {fan.fast_done_s:.2f} s with the slow webhook vs "
              f"{base.fast_done_s:.2f} s without (ratio {fan.fast_done_s / base.fast_done_s:.2f}); "
              f"the slow one finished after {fan.slow_done_s or 0:.2f} s "
              f"(bound by 4 in flight x {opts.slow_delay:.2f} s: "
              f"{opts.events / 4 * opts.slow_delay:.1f} s)",
              "enqueued s: until the worker's consumer had turned every event into deliveries "
              "(latencies count from there)",
              footnote, "every delivery arrived exactly once", *facts]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    load_at_start = load_average()
    started = utcnow()
    try:
        rows = run(opts)
    except KeyboardInterrupt:
        progress("interrupted; everything started was stopped")
        return 130
    except Terminated:
        progress("terminated; everything started was stopped")
        return 143
    progress(f"done in {(utcnow() - started).total_seconds():.0f} s")
    print(report(rows, opts, machine_facts(load_at_start)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
