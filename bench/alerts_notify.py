"""Bench: alert evaluation — bug_created events through the real worker with and without rules.

Starts PostgreSQL and NATS (`bugnet_stack`, components postgres + nats) on free ports in a
scratch directory, migrates the integrations database and starts the real integrations worker
(`python -m integrations.worker`, no SMTP). Each scenario gets a fresh project with
`--members` members (read-model rows written directly) and publishes `--events`
`bug_created` events to JetStream (as the bugs service's outbox relay would), then waits until
the `integrations-alerts` consumer has handled all of them:
  1. baseline     no alert rules: the consumer only finds nothing to evaluate;
  2. cooldown     `--rules` new_bug rules (in-app) with a week-long window: every event is
                  evaluated by every rule, each rule fires once and then only counts
                  suppressed signals;
  3. firing       the same rules with a 1-minute window and the events' times 2 minutes
                  apart: every event fires every rule, each firing an alert_triggered outbox
                  event and one in-app notification per member.
It reports events per second of the alert consumer, its ratio to the baseline, and what the
firing scenario wrote. The firings and notifications are counted: a missing or doubled one
fails the bench.

Run from the repository root:  .venv/bin/python -m bench.alerts_notify [--events 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

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
from bugnet_common.bus.events import Event, isoformat, utcnow
from bugnet_common.db import Database, migrate
from bugnet_stack import Ports, Stack
from integrations.alerts.consumers import BUGS_DURABLE
from integrations.alerts.models import AlertRule
from integrations.migrate import MIGRATIONS
from integrations.models import MemberRef, ProjectRef, UserRef

PERMISSIONS = ["bugs.view", "bugs.create", "analytics.view"]


@dataclass
class Options:
    events: int
    rules: int
    members: int
    timeout: float
    keep: bool


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.alerts_notify",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=300, help="bug events per scenario "
                        "(at most 600: the firing scenario spaces them 2 minutes apart within "
                        "the last day)")
    parser.add_argument("--rules", type=int, default=10, help="alert rules of the project")
    parser.add_argument("--members", type=int, default=20, help="members told of each firing")
    parser.add_argument("--alerts-timeout", dest="timeout", type=float, default=600.0,
                        help="give up a scenario after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    opts, _ = parser.parse_known_args(argv)  # `python -m bench` passes everyone's arguments
    return Options(events=min(opts.events, 600), rules=opts.rules, members=opts.members,
                   timeout=opts.timeout, keep=opts.keep)


@dataclass
class Row:
    name: str
    rules: int
    seconds: float
    firings: int
    notifications: int

    def rate(self, events: int) -> float:
        return events / self.seconds


def add_project(db: Database, *, members: int, rules: int, window_minutes: int) -> str:
    project_id = str(uuid.uuid4())
    with db.begin() as session:
        session.add(ProjectRef(id=project_id, slug=f"bench-{project_id[:8]}", name="Bench"))
        session.flush()
        for i in range(members):
            user_id = str(uuid.uuid4())
            session.add(UserRef(id=user_id, email=f"m{i}-{user_id[:6]}@bench.test",
                                display_name=f"Member {i}"))
            session.add(MemberRef(project_id=project_id, user_id=user_id, role="member",
                                  permissions=PERMISSIONS))
        for i in range(rules):
            session.add(AlertRule(id=str(uuid.uuid4()), project_id=project_id, name=f"Rule {i}",
                                  condition="new_bug", threshold=1.0,
                                  window_minutes=window_minutes, channels=["in_app"]))
    return project_id


def publish(nats_url: str, project_id: str, n: int, *, spaced: bool) -> None:
    start = utcnow() - timedelta(hours=22)

    async def main() -> None:
        nc = await nats_client.connect(nats_url)
        js = nc.jetstream()
        acks = []
        for i in range(n):
            bug_id = str(uuid.uuid4())
            e = Event(type="bugnet.bugs.v1.bug_created", source="bugs",
                      time=isoformat(start + timedelta(minutes=2 * i)) if spaced
                      else isoformat(utcnow()),
                      data={"bug": {
                          "id": bug_id, "project_id": project_id, "project_slug": "bench",
                          "number": i + 1, "title": f"Bench bug {i}", "category": "crash",
                          "priority": "high", "status": "open", "source": "dashboard",
                          "url": f"/api/projects/bench/bugs/{bug_id}"}, "changes": {}})
            acks.append(js.publish(e.type, e.to_json(), headers={"Nats-Msg-Id": e.id}))
            if len(acks) >= 200:
                await asyncio.gather(*acks)
                acks = []
        await asyncio.gather(*acks)
        await nc.close()

    asyncio.run(main())


def handled(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM inbox WHERE consumer = :c"),
                                {"c": BUGS_DURABLE}).scalar_one())


def counts(db: Database, project_id: str) -> tuple[int, int]:
    with db.engine.connect() as conn:
        firings = conn.execute(sa.text("SELECT count(*) FROM alert_firings WHERE project_id = :p"),
                               {"p": project_id}).scalar_one()
        notes = conn.execute(sa.text("SELECT count(*) FROM notifications WHERE project_id = :p"),
                             {"p": project_id}).scalar_one()
    return int(firings), int(notes)


def scenario(name: str, *, opts: Options, db: Database, nats_url: str, rules: int,
             window_minutes: int, spaced: bool) -> Row:
    project_id = add_project(db, members=opts.members, rules=rules,
                             window_minutes=window_minutes)
    before = handled(db)
    progress(f"{name}: publishing {opts.events} bug_created events ({rules} rules)")
    t0 = time.monotonic()
    publish(nats_url, project_id, opts.events, spaced=spaced)
    deadline = t0 + opts.timeout
    while handled(db) - before < opts.events:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: {handled(db) - before} of {opts.events} events handled "
                               f"within {opts.timeout} s")
        time.sleep(0.02)
    seconds = time.monotonic() - t0
    firings, notes = counts(db, project_id)
    return Row(name=name, rules=rules, seconds=seconds, firings=firings, notifications=notes)


def check(rows: list[Row], opts: Options) -> None:
    expected = [(0, 0), (opts.rules, opts.rules * opts.members),
                (opts.rules * opts.events, opts.rules * opts.events * opts.members)]
    for row, (firings, notes) in zip(rows, expected, strict=True):
        if (row.firings, row.notifications) != (firings, notes):
            raise RuntimeError(f"{row.name}: {row.firings} firings and {row.notifications} "
                               f"notifications, expected {firings} and {notes}")


def run(opts: Options) -> list[Row]:
    with data_directory(opts.keep) as data_dir:
        stack = Stack(data_dir=data_dir, ports=Ports.free(), components=("postgres", "nats"),
                      durable=False)
        worker: subprocess.Popen[bytes] | None = None
        try:
            progress("starting PostgreSQL and NATS")
            stack.up(timeout=120)
            url = stack.database_url("integrations")
            migrate(script_location=MIGRATIONS, url=url)
            env = {**os.environ, **stack.service_env("integrations"), "INTEGRATIONS_ENV": "dev",
                   "INTEGRATIONS_LOG_LEVEL": "WARNING"}
            env.pop("INTEGRATIONS_SMTP_HOST", None)
            db = Database(url, pool_size=2)
            progress("starting the integrations worker")
            worker = subprocess.Popen([sys.executable, "-m", "integrations.worker"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_worker_ready(stack.urls.nats)
            rows = [
                scenario("baseline (no rules)", opts=opts, db=db, nats_url=stack.urls.nats,
                         rules=0, window_minutes=60, spaced=False),
                scenario("cooldown (rules, 1 firing)", opts=opts, db=db,
                         nats_url=stack.urls.nats, rules=opts.rules,
                         window_minutes=7 * 24 * 60, spaced=False),
                scenario("firing (every event)", opts=opts, db=db, nats_url=stack.urls.nats,
                         rules=opts.rules, window_minutes=1, spaced=True),
            ]
            check(rows, opts)
            db.engine.dispose()
            return rows
        finally:
            if worker is not None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(20)
                except subprocess.TimeoutExpired:
                    worker.kill()
            stack.down()


def wait_worker_ready(nats_url: str, timeout: float = 30.0) -> None:
    """Until the worker's alert consumer exists (it then sees every event published)."""
    async def ready() -> bool:
        nc = await nats_client.connect(nats_url)
        try:
            await nc.jetstream().consumer_info("BUGS", BUGS_DURABLE)
            return True
        except Exception:
            return False
        finally:
            await nc.close()

    deadline = time.monotonic() + timeout
    while not asyncio.run(ready()):
        if time.monotonic() > deadline:
            raise RuntimeError("the integrations worker did not start")
        time.sleep(0.2)


def report(rows: list[Row], opts: Options, facts: list[str]) -> str:
    base = rows[0]
    lines = [
        f"alert evaluation: {opts.events} bug_created events per scenario through the real "
        f"worker; {opts.members} members per project",
        "",
        f"{'scenario':<28} {'rules':>5} {'seconds':>8} {'events/s':>9} {'ratio':>6} "
        f"{'firings':>8} {'notifications':>13}",
    ]
    for r in rows:
        lines.append(f"{r.name:<28} {r.rules:>5} {r.seconds:>8.2f} {r.rate(opts.events):>9.1f} "
                     f"{r.rate(opts.events) / base.rate(opts.events):>6.2f} {r.firings:>8} "
                     f"{r.notifications:>13}")
    lines += ["", "seconds: from the first publish until the alert consumer's inbox held every "
                  "event (publishing included)",
              "every firing and notification was counted exactly", *facts]
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
