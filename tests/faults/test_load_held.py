"""Load held: minutes of mixed traffic at a steady rate the box carries, with every process's
memory flat, p99 stable and zero errors (issue 7). Run with `make test-faults`.

An open-loop driver (requests leave on a fixed schedule, whatever the answers do, so a slow
server shows up as latency rather than as less load) sends, per ten requests: three session
starts, three session ends, two perf snapshots, one SDK bug report and one dashboard read
(analytics, bugs, auth and integrations in turn), through one small connection pool per
service (see CONNECTIONS_PER_SERVICE: one big shared pool made the driver itself the
bottleneck after a cold start's first slow second). Every `SAMPLE_SECONDS` it records each
supervised program's private memory (USS of its whole process tree: granian's and gunicorn's
workers included) and the window's latency percentiles.
Sampling runs in a thread: done on the event loop it held up the sends due meanwhile, which
then left in one burst and queued — the driver's own stall, measured as the stack's p99
(100-200 ms in every window, seconds in some; 14 ms with the sampling off the loop).

Verdicts, after a warm-up (`WARMUP_SECONDS`: caches, pools and PostgreSQL's shared buffers
fill up first):
- errors: every answer is the expected 2xx;
- memory: no program's USS at the end exceeds its post-warm-up level by more than
  max(15 %, 30 MB) (a leak of 65 KB/s, about 230 MB an hour, would cross it);
- latency: no window's p99 is above three times the median window p99 (one-off scheduling
  spikes of a shared 2-core box are tolerated by the median, a trend is not).

A second table explains a bad window: the slowest answer per kind, Envoy's upstream counters
(connection failures, resets with a request in flight, pending overflows, retries), the CPU
each program used (the driver's own process included), how late the driver sent, and how long
sampling took; then the slowest seconds of the run, per kind, each with its slowest request's
id (the driver sends X-Request-ID, which Envoy's access log keeps, so the time Envoy saw can be
set against the time the driver saw); then Envoy's access log entries of any 5xx (response
flags say whose failure) and PostgreSQL's checkpoints.

BUGNET_SOAK_SECONDS (default 600) and BUGNET_SOAK_RATE (requests/s, default 120: a fraction of
what bench.analytics_ingest and bench.sdk_submit show the box carries) tune it;
BUGNET_SOAK_REPORT names a file that receives the table as markdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import pytest

from bugnet_gateway.render import RateLimits
from bugnet_stack import Ports, Stack
from bugnet_stack.config import SERVICES
from servers import scratch_dir

pytestmark = [pytest.mark.heavy, pytest.mark.timeout(3600)]

DURATION = float(os.environ.get("BUGNET_SOAK_SECONDS", "600"))
RATE = float(os.environ.get("BUGNET_SOAK_RATE", "120"))
SAMPLE_SECONDS = 30.0
WARMUP_SECONDS = min(120.0, DURATION / 4)
UNLIMITED = 10_000_000
MAX_IN_FLIGHT = 256  # open loop, but bounded: a stack that falls behind fails, the driver doesn't
# One httpx client per service, each with this many connections and a gate in front of its pool.
# httpx's pool does O(connections²) work on every request it hands out, and more per request
# queued inside it: one client of 64 busy connections cost the driver 5.2-5.6 ms of CPU a
# request (under 200 requests/s for a whole core), so a cold start's first slow second, which
# filled them, left the driver draining its queue more slowly than requests arrived, for many
# seconds, with the stack idle (Envoy timed those requests at ~25 ms). 16 per client, gated:
# 0.78 ms (python -m bench.driver_pool measures it).
CONNECTIONS_PER_SERVICE = 16
SERVICE_OF_KIND = {"start": "analytics", "end": "analytics", "perf": "analytics",
                   "submit": "bugs"}
MIX = ("start", "start", "start", "end", "end", "end", "perf", "perf", "submit", "dashboard")
DASHBOARD_READS = (("analytics", "/api/projects/{slug}/analytics/crashes"),
                   ("bugs", "/api/projects/{slug}/bugs"), ("auth", "/api/auth/me"),
                   ("integrations", "/api/projects/{slug}/webhooks"))


@pytest.fixture(scope="module")
def soak_stack() -> Iterator[Stack]:
    with scratch_dir("bugnet-soak-") as data_dir:
        s = Stack(data_dir=data_dir, ports=Ports.free(), durable=True,
                  limits=RateLimits(public=UNLIMITED, user=UNLIMITED, login=UNLIMITED))
        try:
            s.up(timeout=300)
            yield s
        finally:
            s.down()


@dataclass
class Window:
    started: float
    errors: int = 0
    rss_mb: dict[str, float] = field(default_factory=dict)
    worst_ms: dict[str, float] = field(default_factory=dict)  # slowest answer per kind
    envoy: dict[str, int] = field(default_factory=dict)  # upstream counters, this window's delta
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds per program, delta
    late_ms: float = 0.0  # how far behind its schedule the driver sent a request, at worst
    sample_s: float = 0.0  # how long sampling took
    # every answer: (seconds since the start it was sent, kind, seconds it took, request id)
    trace: list[tuple[float, str, float, str]] = field(default_factory=list)

    @property
    def latencies(self) -> list[float]:
        return [took for _, _, took, _ in self.trace]

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def tree_rss_mb(pid: int) -> float:
    """The private memory (USS) of a program's process tree. Summed RSS would count shared
    pages once per process: PostgreSQL's backends each map the shared buffers they touched,
    so their RSS sum climbs for many minutes without any leak (measured: 817 -> 1,187 MB)."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_full_info().uss for p in procs if p.is_running()) / 2**20
    except psutil.Error:
        return 0.0


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a program's live process tree."""
    try:
        proc = psutil.Process(pid)
        times = [p.cpu_times() for p in (proc, *proc.children(recursive=True))]
    except psutil.Error:
        return 0.0
    return sum(t.user + t.system for t in times)


# Envoy's per-cluster counters that tell why an upstream request failed or waited.
ENVOY_COUNTERS = ("upstream_cx_connect_fail", "upstream_cx_connect_timeout",
                  "upstream_cx_destroy_remote_with_active_rq", "upstream_cx_total",
                  "upstream_rq_pending_overflow", "upstream_rq_pending_total",
                  "upstream_rq_timeout", "upstream_rq_retry", "upstream_rq_5xx",
                  "upstream_cx_protocol_error", "upstream_rq_rx_reset", "upstream_rq_tx_reset")


def envoy_upstream_counters(admin_url: str) -> dict[str, int]:
    """`<cluster>.<counter>` for the service clusters, from Envoy's admin interface."""
    services = "|".join(SERVICES)
    wanted = "|".join(ENVOY_COUNTERS)
    try:
        resp = httpx.get(f"{admin_url}/stats", params={
            "format": "json", "filter": rf"^cluster\.({services})\.({wanted})$"}, timeout=5)
        stats = resp.json()["stats"]
    except (httpx.HTTPError, ValueError, KeyError):
        return {}
    return {s["name"].removeprefix("cluster."): int(s["value"]) for s in stats if "value" in s}


def slowest_seconds(windows: list[Window], top: int = 8) -> list[str]:
    """The seconds whose requests took longest, each with its answers per kind (how many, the
    slowest) and the slowest request's id, to find in Envoy's access log (`request_id`)."""
    by_second: dict[int, list[tuple[float, str, float, str]]] = {}
    for w in windows:
        for entry in w.trace:
            by_second.setdefault(int(entry[0]), []).append(entry)
    worst = sorted(by_second.items(), key=lambda kv: -max(e[2] for e in kv[1]))[:top]
    lines = []
    for second, entries in sorted(worst):
        kinds: dict[str, list[float]] = {}
        for _, kind, took, _ in entries:
            kinds.setdefault(kind, []).append(took)
        per_kind = ", ".join(f"{k} {len(v)} (max {max(v) * 1000:.0f} ms)"
                             for k, v in sorted(kinds.items()))
        slowest = max(entries, key=lambda e: e[2])
        lines.append(f"- {second} s: {per_kind}; slowest {slowest[1]} {slowest[3]}")
    return lines


def failed_access_log(log_dir: Path, limit: int = 40) -> list[str]:
    """Envoy's access-log entries of answers >= 500 (status, response flags, details), from
    its log and the rotated ones (supervisord keeps envoy.log.1 and .2)."""
    found: list[str] = []
    logs = sorted(log_dir.glob("envoy.log*"), key=lambda p: p.stat().st_mtime)
    for line in (ln for log in logs for ln in log.read_text(errors="replace").splitlines()):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and str(entry.get("status", "")).startswith("5"):
            found.append(f"{entry.get('time')} {entry.get('method')} {entry.get('path')} "
                         f"{entry.get('status')} {entry.get('response_flags')} "
                         f"{entry.get('details')} {entry.get('duration_ms')} ms")
    return found[-limit:]


def checkpoints(log_dir: Path, began: float) -> list[str]:
    """PostgreSQL's checkpoint log lines, each with its time in seconds from the load's start."""
    found = []
    for line in (log_dir / "postgres.log").read_text(errors="replace").splitlines():
        if "checkpoint" not in line:
            continue
        try:
            at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
        except ValueError:
            continue
        found.append(f"t={at.timestamp() - began:.0f}s {line[24:].strip()}")
    return found


class Driver:
    def __init__(self, stack: Stack, token: str, slug: str, api_key: str) -> None:
        self.stack = stack
        self.token = token
        self.slug = slug
        self.api_key = api_key
        self.open_sessions: list[str] = []
        self.windows: list[Window] = []
        self.sent = 0
        self.error_samples: list[str] = []
        self.cpu_before: dict[str, float] = {}
        self.envoy_before: dict[str, int] = {}
        self.began = 0.0
        self.began_monotonic = 0.0
        self.reads = itertools.cycle(range(len(DASHBOARD_READS)))

    def request(self, kind: str) -> tuple[str, str, str, dict | None, dict[str, str], int]:
        """(service, method, path, JSON body, headers, expected status) of a `kind`."""
        if kind == "dashboard":  # each service's api in turn: every api's memory is exercised
            service, path = DASHBOARD_READS[next(self.reads)]
            return (service, "GET", path.format(slug=self.slug), None,
                    {"Authorization": f"Bearer {self.token}"}, 200)
        return (SERVICE_OF_KIND[kind], *self.sdk_request(kind))

    def sdk_request(self, kind: str) -> tuple[str, str, dict | None, dict[str, str], int]:
        sdk = {"X-API-Key": self.api_key}
        if kind == "start" or (kind == "end" and not self.open_sessions):
            token = uuid.uuid4().hex
            self.open_sessions.append(token)
            return ("POST", "/api/sessions/start", {
                "session_token": token, "platform": "Windows", "game_version": "1.0.0",
                "steam_id": str(len(self.open_sessions) % 500)}, sdk, 201)
        if kind == "end":
            token = self.open_sessions.pop(0)
            return ("POST", "/api/sessions/end",
                    {"session_token": token, "crashed": token[0] in "01"}, sdk, 200)
        if kind == "perf":
            return ("POST", "/api/perf/snapshot", {
                "fps": 58.5, "frame_time_ms": 17.1, "memory_used_mb": 812, "platform": "Windows",
                "game_version": "1.0.0", "custom_metrics": {"scene": "forest"}}, sdk, 201)
        return ("POST", "/api/bugs/submit", {
            "title": f"Soak report {uuid.uuid4().hex[:8]}", "description": "held load",
            "category": "gameplay", "platform": "Windows", "game_version": "1.0.0"}, sdk, 201)

    async def one(self, clients: dict[str, tuple[httpx.AsyncClient, asyncio.Semaphore]],
                  kind: str) -> None:
        service, method, path, body, headers, expected = self.request(kind)
        client, gate = clients[service]
        window = self.windows[-1]
        request_id = f"soak-{uuid.uuid4().hex[:12]}"  # Envoy keeps it: its access log joins
        sent_at = time.monotonic() - self.began_monotonic
        started = time.perf_counter()  # the wait at the gate counts: the schedule is the clock
        try:
            async with gate:
                resp = await client.request(method, path, json=body,
                                            headers=headers | {"X-Request-ID": request_id})
            ok = resp.status_code == expected
            detail = f"{kind} {resp.status_code} {resp.text[:120]}"
        except httpx.HTTPError as exc:
            ok, detail = False, f"{kind} {type(exc).__name__}"
        elapsed = time.perf_counter() - started
        window.trace.append((sent_at, kind, elapsed, request_id))
        window.worst_ms[kind] = max(window.worst_ms.get(kind, 0.0), elapsed * 1000)
        if not ok:
            window.errors += 1
            if len(self.error_samples) < 20:
                self.error_samples.append(f"t={window.started:.0f}s {detail}")

    def sample(self, window: Window) -> None:
        """Memory, CPU and Envoy's counters at the end of `window`. Run off the event loop (it
        takes a while): a blocked loop would send the requests due meanwhile in one burst."""
        started = time.perf_counter()
        for info in self.stack.supervisor.all_info():  # pids only: no health probes
            name, pid = str(info["name"]), int(info["pid"])
            if pid:
                window.rss_mb[name] = tree_rss_mb(pid)
                cpu = tree_cpu_s(pid)
                window.cpu_s[name] = cpu - self.cpu_before.get(name, 0.0)
                self.cpu_before[name] = cpu
        driver = psutil.Process().cpu_times()  # this process: is the driver keeping up?
        window.cpu_s["driver"] = driver.user + driver.system - self.cpu_before.get("driver", 0.0)
        self.cpu_before["driver"] = driver.user + driver.system
        counters = envoy_upstream_counters(self.stack.urls.envoy_admin)
        window.envoy = {k: v - self.envoy_before.get(k, 0) for k, v in counters.items()
                        if v - self.envoy_before.get(k, 0)}
        self.envoy_before = counters
        window.sample_s = time.perf_counter() - started

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=CONNECTIONS_PER_SERVICE,
                              max_keepalive_connections=CONNECTIONS_PER_SERVICE)
        async with contextlib.AsyncExitStack() as opened:
            clients = {service: (await opened.enter_async_context(httpx.AsyncClient(
                base_url=self.stack.urls.gateway, timeout=10.0, limits=limits,
                trust_env=False)), asyncio.Semaphore(CONNECTIONS_PER_SERVICE))
                for service in SERVICES}
            tasks: set[asyncio.Task[None]] = set()
            samplers: set[asyncio.Task[None]] = set()
            begin = self.began_monotonic = time.monotonic()
            self.began = time.time()
            self.windows.append(Window(started=0.0))
            next_sample = SAMPLE_SECONDS
            for i, kind in enumerate(itertools.cycle(MIX)):
                due = begin + i / RATE
                now = time.monotonic()
                if due - begin >= DURATION:
                    break
                if due > now:
                    await asyncio.sleep(due - now)
                else:
                    self.windows[-1].late_ms = max(self.windows[-1].late_ms, (now - due) * 1000)
                if due - begin >= next_sample:
                    sampler = asyncio.create_task(asyncio.to_thread(self.sample, self.windows[-1]))
                    samplers.add(sampler)
                    sampler.add_done_callback(samplers.discard)
                    self.windows.append(Window(started=next_sample))
                    next_sample += SAMPLE_SECONDS
                if len(tasks) >= MAX_IN_FLIGHT:
                    # The stack fell this far behind the schedule: count it, don't pile up.
                    self.windows[-1].errors += 1
                    if len(self.error_samples) < 20:
                        self.error_samples.append(f"{kind} not sent: {len(tasks)} in flight")
                    continue
                task = asyncio.create_task(self.one(clients, kind))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                self.sent += 1
            await asyncio.gather(*tasks, *samplers)
            self.sample(self.windows[-1])


def test_mixed_load_is_held_with_flat_memory_stable_p99_and_no_errors(
        soak_stack: Stack) -> None:
    base = soak_stack.urls.gateway + "/api"
    with httpx.Client(base_url=base, timeout=30, trust_env=False) as api:
        signup = api.post("/auth/signup", json={"email": f"soak-{uuid.uuid4().hex[:8]}@example.com",
                                                 "password": "correct horse battery",
                                                 "display_name": "Soak"})
        assert signup.status_code == 201, signup.text
        token = signup.json()["data"]["token"]
        project = api.post("/projects", json={"name": "Soak Game"},
                           headers={"Authorization": f"Bearer {token}"})
        assert project.status_code == 201, project.text
        data = project.json()["data"]
    time.sleep(2)  # the key reaches analytics' read model
    driver = Driver(soak_stack, token, data["slug"], data["api_key"])
    asyncio.run(driver.run())

    windows = [w for w in driver.windows if w.latencies]
    settled = [w for w in windows if w.started >= WARMUP_SECONDS] or windows
    programs = sorted(settled[0].rss_mb)
    lines = ["| window (s) | requests | errors | p50 ms | p99 ms | "
             + " | ".join(f"{p} MB" for p in programs) + " |",
             "|" + "---|" * (5 + len(programs))]
    for w in windows:
        lines.append(f"| {w.started:.0f} | {len(w.latencies)} | {w.errors} | {w.p(0.5):.1f} | "
                     f"{w.p(0.99):.1f} | "
                     + " | ".join(f"{w.rss_mb.get(p, 0):.0f}" for p in programs) + " |")
    table = "\n".join(lines)
    diagnosis = ["", "", "| window (s) | slowest answer per kind (ms) | Envoy upstream counters "
                 "| CPU s per program (top 4) | driver late ms | sampling s |",
                 "|---|---|---|---|---|---|"]
    for w in windows:
        worst = ", ".join(f"{k} {v:.0f}" for k, v in sorted(w.worst_ms.items()))
        envoy = ", ".join(f"{k.replace('upstream_', '')} {v}" for k, v in sorted(w.envoy.items()))
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in
                        sorted(w.cpu_s.items(), key=lambda kv: -kv[1])[:4])
        diagnosis.append(f"| {w.started:.0f} | {worst} | {envoy} | {cpu} | {w.late_ms:.0f} | "
                         f"{w.sample_s:.2f} |")
    table += "\n".join(diagnosis)
    if slow := slowest_seconds(windows):
        table += "\n\nThe slowest seconds (by when the requests were sent):\n" + "\n".join(slow)
    if failed := failed_access_log(soak_stack.log_dir):
        table += "\n\nEnvoy's answers >= 500 (last 40):\n" + "\n".join(failed)
    if found := checkpoints(soak_stack.log_dir, driver.began):
        table += "\n\nPostgreSQL checkpoints:\n" + "\n".join(found)
    summary = (f"{driver.sent} requests in {DURATION:.0f} s at {RATE:.0f}/s; errors "
               f"{sum(w.errors for w in windows)}; load average {os.getloadavg()[0]:.1f}")
    print(f"\n{summary}\n{table}")
    if os.environ.get("BUGNET_SOAK_REPORT"):
        Path(os.environ["BUGNET_SOAK_REPORT"]).write_text(f"{summary}\n\n{table}\n")

    assert sum(w.errors for w in windows) == 0, driver.error_samples
    grown = {}
    for program in programs:
        first = settled[0].rss_mb.get(program, 0.0)
        last = settled[-1].rss_mb.get(program, 0.0)
        if first and last > first + max(0.15 * first, 30.0):
            grown[program] = (round(first), round(last))
    assert grown == {}, f"memory grew after warm-up (MB first, last): {grown}"
    p99s = [w.p(0.99) for w in settled]
    typical = statistics.median(p99s)
    assert max(p99s) <= 3 * typical, f"p99 per window (ms): {[round(p) for p in p99s]}"
