"""Mixed SDK and dashboard traffic for fault tests, recorded request by request, and the
checks that compare what was accepted with what the services' databases hold.

Every write carries a unique marker (a bug's title, a session token, a perf snapshot's
`custom_metrics.marker`), so stored rows are counted exactly: 0 for an accepted request is a
loss, more than 1 is a duplicate. A request that failed may still have been stored (its
answer was lost), so for those only "at most once" holds.

Used by tests/faults/test_faults_under_load.py (heavy) and tests/e2e/test_fault_smoke_e2e.py.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psutil
import psycopg

from bugnet_stack import Stack

# A request with no answer after this long is a hang. It is above the longest wait the stack
# promises: analytics holds SDK writes through a database outage for up to
# batching.OUTAGE_SECONDS (20 s) and Envoy answers 504 after its 30 s route timeout.
HANG_SECONDS = 35.0
PASSWORD = "correct horse battery"
KINDS = ("submit", "session", "perf", "dashboard")
# Statuses a failed request may have while a dependency is away (with the error envelope).
CLEAN_FAILURES = frozenset({502, 503, 504})


@dataclass
class Record:
    kind: str  # submit, session_start, session_end, perf, dashboard
    marker: str
    phase: str
    sent: float
    path: str = ""
    done: float = 0.0
    status: int = 0  # 0: no answer (transport error or hang)
    clean: bool = True  # a non-2xx answer carried the error envelope
    error: str = ""  # transport error class name
    body: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def hang(self) -> bool:
        return self.error in {"ReadTimeout", "WriteTimeout", "PoolTimeout", "TimeoutException"}


@dataclass
class Project:
    id: str
    slug: str
    api_key: str
    token: str


def psycopg_url(stack: Stack, service: str) -> str:
    return "postgresql://" + stack.database_url(service).split("://", 1)[1]


def _retry_201(call: Any, what: str, timeout: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        r = call()
        if r.status_code == 201 or time.monotonic() > deadline:
            assert r.status_code == 201, f"{what}: {r.status_code} {r.text}"
            return r
        time.sleep(0.25)


def make_project(stack: Stack, *, client: httpx.Client | None = None) -> Project:
    """A user and a project created through the gateway; waits until analytics knows the key
    and integrations knows the project."""
    api = client or httpx.Client(base_url=stack.urls.gateway + "/api", timeout=30.0,
                                 trust_env=False)
    try:
        r = api.post("/auth/signup", json={"email": f"fl-{uuid.uuid4().hex[:10]}@example.com",
                                           "password": PASSWORD, "display_name": "Faults"})
        assert r.status_code == 201, r.text
        token = r.json()["data"]["token"]
        headers = {"Authorization": f"Bearer {token}"}
        r = _retry_201(lambda: api.post("/projects", json={"name": "Fault Load Game"},
                                        headers=headers), "create project")
        p = r.json()["data"]
        project = Project(id=p["id"], slug=p["slug"], api_key=p["api_key"], token=token)
        _retry_201(lambda: api.post("/sessions/start", headers={"X-API-Key": project.api_key},
                                    json={"session_token": f"probe-{uuid.uuid4().hex}"}),
                   "analytics learns the key")
        return project
    finally:
        if client is None:
            api.close()


class WebhookReceiver:
    """A local webhook target counting the deliveries it receives, by bug id."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bugs: Counter[str] = Counter()
        self.delivery_ids: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw)
                    bug_id = str(payload.get("data", {}).get("id", ""))
                except ValueError:
                    bug_id = ""
                with receiver.lock:
                    delivery = self.headers.get("X-Bugnet-Delivery", "")
                    if delivery not in receiver.delivery_ids:
                        receiver.delivery_ids.add(delivery)
                        receiver.bugs[bug_id] += 1
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def add_webhook(stack: Stack, project: Project, url: str) -> str:
    with httpx.Client(base_url=stack.urls.gateway + "/api", timeout=30.0,
                      trust_env=False) as api:
        r = _retry_201(lambda: api.post(
            f"/projects/{project.slug}/webhooks", json={"url": url, "events": ["bug_created"]},
            headers={"Authorization": f"Bearer {project.token}"}), "create webhook")
        return str(r.json()["data"]["id"])


class Load:
    """Threads sending one traffic kind each, continuously, recording every request.

    `phase` labels the records (the main thread sets it before each fault)."""

    def __init__(self, stack: Stack, project: Project, *, kinds: tuple[str, ...] = KINDS,
                 threads_per_kind: int = 1, pause: float = 0.0,
                 local_address: str | None = None) -> None:
        self.base_url = stack.urls.gateway + "/api"
        self.project = project
        self.pause = pause
        self.local_address = local_address
        self.phase = "warmup"
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.records: list[Record] = []
        self.threads = [threading.Thread(target=self._run, args=(kind, n), daemon=True)
                        for kind in kinds for n in range(threads_per_kind)]

    # --- sending ------------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        transport = (httpx.HTTPTransport(local_address=self.local_address)
                     if self.local_address else None)
        return httpx.Client(base_url=self.base_url, timeout=HANG_SECONDS, trust_env=False,
                            transport=transport)

    def _run(self, kind: str, n: int) -> None:
        sdk = {"X-API-Key": self.project.api_key}
        user = {"Authorization": f"Bearer {self.project.token}"}
        slug = self.project.slug
        reads = [f"/projects/{slug}/analytics", f"/projects/{slug}/analytics/crashes",
                 f"/projects/{slug}/bugs?limit=5"]
        with self._client() as client:
            i = 0
            while not self.stop.is_set():
                i += 1
                marker = f"fl-{kind[:2]}{n}-{i}-{uuid.uuid4().hex[:10]}"
                if kind == "submit":
                    self._send(client, "submit", marker, "POST", "/bugs/submit", sdk, {
                        "title": marker, "description": f"fault load {marker}",
                        "category": "gameplay", "priority": "low", "platform": "Windows",
                        "game_version": "1.0.0"})
                elif kind == "session":
                    ok = self._send(client, "session_start", marker, "POST", "/sessions/start",
                                    sdk, {"session_token": marker, "platform": "Windows",
                                          "game_version": "1.0.0", "steam_id": f"7656{n}{i % 9}"})
                    if ok is not None:
                        self._send(client, "session_end", marker, "POST", "/sessions/end", sdk,
                                   {"session_token": marker, "crashed": i % 4 == 0})
                elif kind == "perf":
                    self._send(client, "perf", marker, "POST", "/perf/snapshot", sdk, {
                        "fps": 60.0, "frame_time_ms": 16.6, "memory_used_mb": 512.0,
                        "platform": "Windows", "game_version": "1.0.0",
                        "custom_metrics": {"marker": marker}})
                else:
                    self._send(client, "dashboard", marker, "GET", reads[i % len(reads)], user,
                               None)
                if self.pause:
                    time.sleep(self.pause)

    def _send(self, client: httpx.Client, kind: str, marker: str, method: str, path: str,
              headers: dict[str, str], body: dict[str, Any] | None) -> Record | None:
        rec = Record(kind=kind, marker=marker, phase=self.phase, sent=time.monotonic(),
                     path=path)
        with self.lock:
            self.records.append(rec)
        try:
            r = client.request(method, path, json=body, headers=headers)
            rec.status = r.status_code
            if not rec.ok:
                rec.body = r.text[:300]
                rec.clean = _is_error_envelope(r)
        except httpx.HTTPError as exc:
            rec.error = "TimeoutException" if isinstance(exc, httpx.TimeoutException) \
                else type(exc).__name__
            rec.clean = False
            time.sleep(0.1)  # connection refused comes back at once; do not spin
        rec.done = time.monotonic()
        return rec if rec.ok else None

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(HANG_SECONDS + 10)

    # --- reading --------------------------------------------------------------------------------

    def snapshot(self) -> list[Record]:
        with self.lock:
            return [r for r in self.records if r.done]

    def accepted_since(self, since: float, kinds: set[str] | None = None) -> int:
        return sum(1 for r in self.snapshot() if r.ok and r.sent >= since
                   and (kinds is None or r.kind in kinds))

    def wait_accepted(self, more: int, *, since: float | None = None, timeout: float = 60.0,
                      kinds: set[str] | None = None) -> None:
        since = time.monotonic() if since is None else since
        deadline = time.monotonic() + timeout
        while self.accepted_since(since, kinds) < more:
            assert time.monotonic() < deadline, (
                f"no {more} accepted requests within {timeout:.0f} s; last failures: "
                f"{[(r.kind, r.status, r.error, r.body[:80]) for r in self.snapshot()[-5:]]}")
            time.sleep(0.1)


def _is_error_envelope(r: httpx.Response) -> bool:
    try:
        body = r.json()
    except ValueError:
        return False
    return (isinstance(body, dict) and body.get("ok") is False
            and isinstance(body.get("error"), str) and bool(body["error"]))


# --- faults -----------------------------------------------------------------------------------

def kill9(stack: Stack, program: str) -> tuple[int, list[psutil.Process]]:
    """SIGKILL of one supervised program's process, by the pid supervisord reports; returns
    the pid and the processes it had started (they must not outlive it)."""
    info = stack.supervisor.info(program)
    assert info["statename"] == "RUNNING", info
    pid = int(info["pid"])
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        children = []
    os.kill(pid, signal.SIGKILL)
    return pid, children


def orphans_left(children: list[psutil.Process], timeout: float = 20.0) -> list[int]:
    """The killed process's children still running after `timeout` (each a process nothing
    supervises any more)."""
    deadline = time.monotonic() + timeout
    alive = children
    while True:
        alive = [c for c in alive if _alive(c)]
        if not alive or time.monotonic() > deadline:
            return [c.pid for c in alive]
        time.sleep(0.2)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_running(stack: Stack, program: str, *, old_pid: int, timeout: float) -> tuple[bool, str]:
    """Until supervisord runs `program` again under a new pid; (recovered, how).

    supervisord restarts an unexpectedly exited program by itself (autorestart). If it gave up
    (FATAL / BACKOFF exhausted), the program is started through the supervisor — reported as
    such: that is the one recovery the stack did not do alone."""
    deadline = time.monotonic() + timeout
    how = "auto (supervisord autorestart)"
    down_since: float | None = None
    while time.monotonic() < deadline:
        info = stack.supervisor.info(program)
        state = info["statename"]
        if state == "RUNNING" and int(info["pid"]) != old_pid:
            return True, how
        # EXITED is also the moment between the exit and supervisord's own restart.
        down_since = (down_since or time.monotonic()) if state in {"EXITED", "STOPPED"} \
            else None
        if state == "FATAL" or (down_since and time.monotonic() - down_since > 5):
            how = f"started by the test via supervisor after {state}"
            stack.supervisor.start(program)
            down_since = None
        time.sleep(0.2)
    return False, how


# --- what the databases hold --------------------------------------------------------------------

@dataclass
class Stored:
    bugs: Counter[str] = field(default_factory=Counter)  # title -> rows (bugs db)
    bug_ids: dict[str, str] = field(default_factory=dict)  # bug id -> title
    sessions: dict[str, tuple[bool, bool]] = field(default_factory=dict)  # token -> (ended, crashed)
    session_rollup_mismatch: int = 0
    perf: Counter[str] = field(default_factory=Counter)  # marker -> rows
    analytics_bugs: Counter[str] = field(default_factory=Counter)  # bug id -> rows (analytics)
    deliveries: Counter[str] = field(default_factory=Counter)  # bug id -> delivery rows
    parked: dict[str, int] = field(default_factory=dict)  # service -> parked bus messages


def read_stored(stack: Stack, project: Project, webhook_id: str | None = None) -> Stored:
    s = Stored()
    with psycopg.connect(psycopg_url(stack, "bugs"), autocommit=True) as conn:
        for bug_id, title in conn.execute(
                "SELECT id, title FROM bugs WHERE project_id = %s AND title LIKE 'fl-%%'",
                (project.id,)):
            s.bugs[title] += 1
            s.bug_ids[str(bug_id)] = title
        s.parked["bugs"] = _parked(conn)
    with psycopg.connect(psycopg_url(stack, "analytics"), autocommit=True) as conn:
        for token, ended, crashed in conn.execute(
                "SELECT session_token, ended_at IS NOT NULL, crashed FROM game_sessions "
                "WHERE project_id = %s AND session_token LIKE 'fl-%%'", (project.id,)):
            s.sessions[token] = (ended, crashed)
        row = conn.execute(
            "SELECT coalesce(sum(abs(coalesce(d.sessions, 0) - coalesce(g.sessions, 0))), 0) "
            "FROM session_daily d FULL JOIN (SELECT project_id, day, game_version, platform, "
            "count(*) AS sessions FROM game_sessions GROUP BY 1, 2, 3, 4) g "
            "USING (project_id, day, game_version, platform) WHERE project_id = %s",
            (project.id,)).fetchone()
        s.session_rollup_mismatch = int(row[0]) if row else 0
        for marker, n in conn.execute(
                "SELECT custom_metrics->>'marker', count(*) FROM perf_snapshots "
                "WHERE project_id = %s AND custom_metrics ? 'marker' GROUP BY 1", (project.id,)):
            s.perf[str(marker)] = int(n)
        for bug_id, n in conn.execute(
                "SELECT id, count(*) FROM bugs WHERE project_id = %s GROUP BY 1", (project.id,)):
            s.analytics_bugs[str(bug_id)] = int(n)
        s.parked["analytics"] = _parked(conn)
    with psycopg.connect(psycopg_url(stack, "integrations"), autocommit=True) as conn:
        if webhook_id:
            for body, in conn.execute(
                    "SELECT body FROM deliveries WHERE webhook_id = %s AND event = 'bug_created'",
                    (webhook_id,)):
                s.deliveries[str(json.loads(body)["data"]["id"])] += 1
        s.parked["integrations"] = _parked(conn)
    return s


def _parked(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM parked_messages").fetchone()
    return int(row[0]) if row else 0


def wait_converged(stack: Stack, project: Project, webhook_id: str | None,
                   timeout: float = 180.0) -> Stored:
    """Until every stored bug reached analytics (and the webhook's deliveries) — the outboxes
    and consumers have drained."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = read_stored(stack, project, webhook_id)
            done = all(b in s.analytics_bugs for b in s.bug_ids) and (
                webhook_id is None or all(b in s.deliveries for b in s.bug_ids))
        except psycopg.Error:
            done, s = False, Stored()
        if done or time.monotonic() > deadline:
            return s
        time.sleep(1.0)


# --- the verdict ----------------------------------------------------------------------------------

@dataclass
class Row:
    fault: str
    sent: int = 0
    accepted: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    failed_clean: int = 0
    failed_unclean: int = 0
    hangs: int = 0
    recovery_s: float | None = None  # fault -> first 2xx of the slowest traffic kind
    recovery_by_kind: dict[str, float | None] = field(default_factory=dict)
    events_lost: int = 0
    events_duplicated: int = 0
    orphans: int = 0  # processes of the killed one still running afterwards
    slowest_s: float = 0.0  # the longest a request waited for its answer
    how: str = ""
    samples: list[str] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)  # "kind status" -> count

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def tally(fault: str, records: list[Record], stored: Stored, *, fault_at: float | None,
          how: str = "") -> Row:
    """One table row: the phase's requests against what the databases hold."""
    row = Row(fault=fault, how=how)
    for rec in records:
        row.sent += 1
        row.slowest_s = max(row.slowest_s, round(rec.done - rec.sent, 2))
        if rec.ok:
            row.accepted += 1
        else:
            key = f"{rec.kind} {rec.status or rec.error}"
            if key not in row.failures and len(row.samples) < 8:
                row.samples.append(f"{key} {rec.path} {rec.body[:100]}")
            row.failures[key] += 1
        if rec.ok:
            pass
        elif rec.hang:
            row.hangs += 1
        elif rec.status in CLEAN_FAILURES and rec.clean:
            row.failed_clean += 1
        else:
            row.failed_unclean += 1
            if len(row.samples) < 5:
                row.samples.append(f"{rec.kind} {rec.path} {rec.status or rec.error} "
                                   f"{rec.body[:120]}")
        n = _stored_count(rec, stored)
        if n is None:
            continue
        if n > 1:
            row.duplicated += 1
        if rec.ok:
            if n >= 1:
                row.stored += 1
            else:
                row.lost += 1
                if len(row.samples) < 5:
                    row.samples.append(f"lost {rec.kind} {rec.marker}")
    if fault_at is not None:
        for kind in KINDS:
            if any(r.kind.startswith(kind) for r in records):  # the kinds that were sent
                row.recovery_by_kind[kind] = recovery(records, kind, fault_at)
        values = list(row.recovery_by_kind.values())
        row.recovery_s = None if None in values else max(v for v in values if v is not None)
    return row


def recovery(records: list[Record], kind: str, fault_at: float) -> float | None:
    """Seconds from the fault until `kind` is served again: the end of the first 2xx that
    came after the last failure of that kind (or after the fault, when none failed)."""
    mine = [r for r in records if r.kind.startswith(kind) and r.sent >= fault_at]
    failed = [r.done for r in mine if not r.ok]
    since = max(failed) if failed else fault_at
    after = [r.done for r in mine if r.ok and r.done >= since]
    return round(min(after) - fault_at, 2) if after else None


def _stored_count(rec: Record, s: Stored) -> int | None:
    """How many times the request's effect is stored (None: a read, nothing to count)."""
    if rec.kind == "submit":
        return s.bugs.get(rec.marker, 0)
    if rec.kind == "perf":
        return s.perf.get(rec.marker, 0)
    if rec.kind == "session_start":
        return 1 if rec.marker in s.sessions else 0  # primary key: never more than one row
    if rec.kind == "session_end":
        return 1 if s.sessions.get(rec.marker, (False, False))[0] else 0
    return None


def event_effects(stored: Stored, *, webhook: bool,
                  titles: set[str] | None = None) -> tuple[int, int]:
    """(lost, duplicated) effects of bug_created on its consumers: each bug stored in the bugs
    database (with one of `titles`, default all) is exactly once in analytics' read model and
    has exactly one webhook delivery."""
    lost = dup = 0
    for bug_id, title in stored.bug_ids.items():
        if titles is not None and title not in titles:
            continue
        counts = [stored.analytics_bugs.get(bug_id, 0)]
        if webhook:
            counts.append(stored.deliveries.get(bug_id, 0))
        lost += sum(1 for c in counts if c == 0)
        dup += sum(1 for c in counts if c > 1)
    return lost, dup


COLUMNS = ("fault", "sent", "accepted", "stored", "lost", "duplicated", "failed_clean",
           "failed_unclean", "hangs", "slowest_s", "recovery_s", "events_lost",
           "events_duplicated", "orphans", "how")


def render_table(rows: list[Row]) -> str:
    def cell(v: Any) -> str:
        return "-" if v is None else str(v)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        d = r.as_dict()
        lines.append("| " + " | ".join(cell(d[c]) for c in COLUMNS) + " |")
    return "\n".join(lines)
