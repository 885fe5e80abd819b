"""Bench: game sessions (`POST /api/sessions/start` + `/end`), against a direct-response Envoy.

Target (HA1): >= 2,000 session requests/s through Envoy with 64 concurrent clients, p99 < 50 ms,
on a 2-core machine, and never a lost accepted request.

Starts a whole stack on free ports in a scratch directory (every rate-limit class raised out of
the way — limits are configuration), signs up one user and creates one project per scenario
through the API, then loads, one after the other with the same connections and duration:
  1. baseline   a separate bare Envoy answering 200 itself (bench/envoy_baseline.py), sent the
                very requests of scenario 2;
  2. gateway    session starts and ends through the gateway: each wrk thread plays sessions
                one after another (start of token n, then its end; every 10th end crashed), a
                token never repeats;
  3. direct     the same straight to the analytics api's server: the gap to row 2 is what
                Envoy costs, the gap to the baseline mostly the Python service.
wrk's Lua script counts what it generated; after each scenario the bench waits until the rows
stop changing and checks, in the analytics database, that every accepted request is stored:
the sessions equal the tokens sent and the crashed sessions the crashed ends sent (minus at
most the requests wrk abandoned in flight at its cut-off, which the service may or may not
have stored, and the non-2xx answers), and that the rollups (`session_daily`) equal the
sessions. It also reports the database's commits during the scenario (requests per commit is
the mean batch size of the group commit).

Needs `wrk` (apt-get install -y wrk): the Python driver cannot make a new token per request.
Run from the repository root:  .venv/bin/python -m bench.analytics_ingest [--duration 30] ...
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg

from bench.auth_me import (
    UNLIMITED,
    Terminated,
    _on_sigterm,
    data_directory,
    load_average,
    machine_facts,
    progress,
    release_stack,
)
from bench.envoy_baseline import DirectResponseEnvoy
from bench.loadgen import WRK_INSTALL_HINT, LoadResult, parse_wrk_output, wrk_path
from bench.sdk_submit import BenchProject, libpq_url, set_up_projects
from bugnet_gateway.render import RateLimits
from bugnet_stack import Ports, Stack
from bugnet_stack.config import API_ENV_DEFAULTS, API_SERVERS

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUEST_TIMEOUT = 10
CRASH_EVERY = 10
SETTLE_SECONDS = 1.0
SETTLE_TIMEOUT = 60.0
FEW_ANSWERS = 100

_PLATFORMS = ["Windows", "win32", "macOS", "Linux", "X11", "Android", "iOS"]
_VERSIONS = ["1.4.0", "1.4.1", "1.4.2", "1.5.0-beta.2"]
_DEVICES = ["AMD Ryzen 7 5800X, RTX 3070", "Intel Core i5-8400, GTX 1060", "Apple M2 Pro",
            "Steam Deck (AMD Custom APU 0405)", "Pixel 8", "iPhone 15"]
_SYSTEMS = ["Windows 11 Pro 23H2", "Windows 10 Home 22H2", "macOS 14.4.1",
            "SteamOS 3.5.7", "Android 14", "iOS 17.4"]


@dataclass(frozen=True)
class Options:
    duration: float
    warmup: float
    connections: int
    durable: bool
    workers: int | None
    threads: int | None
    keep: bool


@dataclass(frozen=True)
class Generated:
    """What wrk's Lua script sent: requests, distinct tokens, crashed ends."""

    requests: int
    tokens: int
    crashed_ends: int


@dataclass(frozen=True)
class Stored:
    sessions: int
    crashed: int
    rollup_sessions: int
    rollup_crashed: int
    commits: int


@dataclass(frozen=True)
class Row:
    scenario: str
    result: LoadResult
    generated: Generated | None = None
    stored: Stored | None = None

    @property
    def ok(self) -> int:
        return self.result.requests - self.result.non_2xx


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.analytics_ingest",
        description="Session starts and ends through the gateway and straight to the "
        "analytics api, as fractions of a direct-response Envoy in the same run; then checks "
        "that every accepted request is stored.")
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds of load per scenario (default 30)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of discarded load before each scenario (default 2)")
    parser.add_argument("--connections", type=int, default=64,
                        help="concurrent keep-alive connections (default 64)")
    parser.add_argument("--durable", action="store_true",
                        help="PostgreSQL with fsync and synchronous_commit on (default: off)")
    parser.add_argument("--workers", type=int, default=None,
                        help="GUNICORN_WORKERS for every service api (default: the launcher's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="GUNICORN_THREADS for every service api (default: the launcher's)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the stack running afterwards (prints how to stop it)")
    # `python -m bench` hands every benchmark the same arguments: accept the others' own.
    for name in ("--login-duration", "--users", "--max-requests", "--driver"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.connections < 2 or args.duration <= 0:
        parser.error("--connections must be >= 2 and --duration > 0")
    return Options(duration=args.duration, warmup=max(0.0, args.warmup),
                   connections=args.connections, durable=args.durable, workers=args.workers,
                   threads=args.threads, keep=args.keep)


# --- the load -----------------------------------------------------------------------------


def _lua(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


def session_script(api_key: str, prefix: str) -> str:
    """wrk's Lua: each thread sends start(token n), end(token n), start(token n+1), ...; a
    token is `<prefix>-<thread>-<n>`; every CRASH_EVERY-th end is crashed. done() prints
    what was generated."""
    lists = {"platforms": _PLATFORMS, "versions": _VERSIONS, "devices": _DEVICES,
             "systems": _SYSTEMS}
    tables = [f"local {name} = {{{', '.join(_lua(v) for v in values)}}}"
              for name, values in lists.items()]
    return "\n".join([
        "-- generated by bench/analytics_ingest.py",
        *tables,
        f"local headers = {{[\"Content-Type\"] = \"application/json\", "
        f"[\"X-API-Key\"] = {_lua(api_key)}}}",
        f"local prefix = {_lua(prefix)}",
        "local threads = {}",
        "counter = 0",
        "crashed_ends = 0",
        "",
        "function setup(thread)",
        "  table.insert(threads, thread)",
        "  thread:set('thread_index', #threads)",
        "end",
        "",
        "local function pick(list, n) return list[n % #list + 1] end",
        "",
        "function request()",
        "  counter = counter + 1",
        "  local n = math.floor((counter + 1) / 2)",
        "  local token = prefix .. '-' .. thread_index .. '-' .. n",
        "  if counter % 2 == 1 then",
        "    local body = '{\"session_token\":\"' .. token .. '\",\"platform\":\"' ..",
        "      pick(platforms, n) .. '\",\"game_version\":\"' .. pick(versions, n) ..",
        "      '\",\"device_info\":\"' .. pick(devices, n) .. '\",\"os_info\":\"' ..",
        "      pick(systems, n) .. '\",\"steam_id\":\"' .. (76561198000000000 + n % 5000) .. '\"}'",
        "    return wrk.format('POST', '/api/sessions/start', headers, body)",
        "  end",
        f"  local crashed = (n % {CRASH_EVERY} == 0)",
        "  if crashed then crashed_ends = crashed_ends + 1 end",
        "  local body = '{\"session_token\":\"' .. token .. '\",\"crashed\":' ..",
        "    tostring(crashed) .. '}'",
        "  return wrk.format('POST', '/api/sessions/end', headers, body)",
        "end",
        "",
        "function done(summary, latency, requests)",
        "  local sent, tokens, crashed = 0, 0, 0",
        "  for _, t in ipairs(threads) do",
        "    local c = t:get('counter')",
        "    sent = sent + c",
        "    tokens = tokens + math.floor((c + 1) / 2)",
        "    crashed = crashed + t:get('crashed_ends')",
        "  end",
        "  io.write(string.format('bench-generated: %d %d %d\\n', sent, tokens, crashed))",
        "end",
        "",
    ])


def run_wrk(base_url: str, script: str, opts: Options, duration: float) -> tuple[
        LoadResult, Generated]:
    wrk = wrk_path()
    assert wrk is not None
    threads = max(1, min(opts.connections, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="bugnet-bench-sessions-") as tmp:
        path = Path(tmp) / "sessions.lua"
        path.write_text(script)
        argv = [wrk, f"--threads={threads}", f"--connections={opts.connections}",
                f"--duration={max(1, math.ceil(duration))}s",
                f"--timeout={REQUEST_TIMEOUT}s", f"--script={path}", "--latency", base_url]
        proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=duration + REQUEST_TIMEOUT + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): {proc.stderr or proc.stdout}")
    counts = [line.split()[1:] for line in proc.stdout.splitlines()
              if line.startswith("bench-generated:")]
    if not counts:
        raise RuntimeError(f"wrk's script printed no counts:\n{proc.stdout}")
    sent, tokens, crashed = (int(x) for x in counts[-1])
    return parse_wrk_output(proc.stdout), Generated(sent, tokens, crashed)


# --- counting what was stored -------------------------------------------------------------


def count(conn: psycopg.Connection, project_id: str, prefix: str) -> tuple[int, int]:
    row = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE crashed) FROM game_sessions "
        "WHERE project_id = %s AND session_token LIKE %s", (project_id, prefix + "-%")).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def settled(conn: psycopg.Connection, project_id: str, prefix: str) -> tuple[int, int]:
    """The counts once they stopped changing: requests abandoned by wrk may still commit."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    last, since = count(conn, project_id, prefix), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = count(conn, project_id, prefix)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= SETTLE_SECONDS:
            break
    return last


def rollups(conn: psycopg.Connection, project_id: str) -> tuple[int, int, int, int]:
    """Sessions and crashed per game_sessions and per session_daily, for the whole project."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM game_sessions WHERE project_id = %(p)s),"
        " (SELECT count(*) FILTER (WHERE crashed) FROM game_sessions WHERE project_id = %(p)s),"
        " (SELECT coalesce(sum(sessions), 0) FROM session_daily WHERE project_id = %(p)s),"
        " (SELECT coalesce(sum(crashed), 0) FROM session_daily WHERE project_id = %(p)s)",
        {"p": project_id}).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def commits(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT xact_commit FROM pg_stat_database "
                       "WHERE datname = current_database()").fetchone()
    return int(row[0]) if row else 0


def wait_until_known(base_url: str, api_key: str, timeout: float = 30.0) -> None:
    """The analytics read model learns a new key from an event: wait until it works."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, timeout=10.0, trust_env=False) as client:
        while True:
            r = client.post("/api/sessions/start", headers={"X-API-Key": api_key},
                            json={"session_token": f"probe-{os.urandom(6).hex()}"})
            if r.status_code == 201:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"sessions/start answered {r.status_code}: {r.text[:300]}")
            time.sleep(0.2)


def measure(name: str, base_url: str, opts: Options, project: BenchProject,
            conn: psycopg.Connection | None, tag: str) -> Row:
    """Tokens are global: `tag` keeps each scenario's (and its warm-up's) apart."""
    if opts.warmup > 0:
        progress(f"warming up   {name} ({opts.warmup:g} s)")
        run_wrk(base_url, session_script(project.api_key, f"w{tag}"), opts, opts.warmup)
    prefix = f"m{tag}"
    before = commits(conn) if conn is not None else 0
    progress(f"measuring    {name} ({opts.duration:g} s, {opts.connections} connections)")
    result, generated = run_wrk(base_url, session_script(project.api_key, prefix), opts,
                                opts.duration)
    if conn is None:
        return Row(name, result)
    sessions, crashed = settled(conn, project.id, prefix)
    all_sessions, all_crashed, rolled, rolled_crashed = rollups(conn, project.id)
    if (all_sessions, all_crashed) != (rolled, rolled_crashed):
        progress(f"  ROLLUP MISMATCH: sessions {all_sessions}/{rolled}, "
                 f"crashed {all_crashed}/{rolled_crashed}")
    stored = Stored(sessions, crashed, rolled - (all_sessions - sessions),
                    rolled_crashed - (all_crashed - crashed), commits(conn) - before)
    return Row(name, result, generated, stored)


# --- report -------------------------------------------------------------------------------


def verdicts(rows: Sequence[Row], connections: int) -> list[str]:
    """Accepted requests not stored (or more stored than sent); empty when all is well."""
    problems = []
    for row in rows:
        if row.stored is None or row.generated is None:
            continue
        g, s = row.generated, row.stored
        # wrk abandons the requests in flight at its cut-off (at most one per connection);
        # a refused or failed request may leave its token without a session.
        slack = connections + row.result.errors
        if s.sessions > g.tokens or s.crashed > g.crashed_ends:
            problems.append(f"{row.scenario}: more sessions stored than sent")
        if s.sessions < g.tokens - slack:
            problems.append(f"{row.scenario}: {g.tokens - s.sessions} sessions missing "
                            f"(allowed {slack} in flight/refused)")
        if s.crashed < g.crashed_ends - slack:
            problems.append(f"{row.scenario}: {g.crashed_ends - s.crashed} crashed ends lost")
        if (s.rollup_sessions, s.rollup_crashed) != (s.sessions, s.crashed):
            problems.append(f"{row.scenario}: rollups differ from the sessions")
    return problems


def report(rows: Sequence[Row], opts: Options, facts: Sequence[str], stack_facts: str) -> str:
    baseline = rows[0].result.rps if rows else 0.0
    header = (f"{'scenario':<34}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}"
              f"{'errors':>8}{'vs baseline':>13}")
    lines = [f"bench.analytics_ingest  {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC", *facts,
             f"driver    wrk; {opts.connections} connections; {opts.duration:g} s per "
             f"scenario; {opts.warmup:g} s warm-up each; start+end pairs, every "
             f"{CRASH_EVERY}th end crashed", f"stack     {stack_facts}", "", header,
             "-" * len(header)]
    for row in rows:
        r = row.result
        mark = " *" if r.requests < FEW_ANSWERS else ""
        ratio = r.rps / baseline if baseline > 0 else 0.0
        lines.append(f"{row.scenario + mark:<34}{r.rps:>9.1f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
                     f"{r.requests:>10}{r.errors:>8}{ratio:>13.4f}")
    lines.append("")
    for row in rows:
        if row.stored is None or row.generated is None:
            continue
        g, s = row.generated, row.stored
        per_commit = row.result.requests / s.commits if s.commits else 0.0
        lines.append(f"  {row.scenario}: sent {g.requests} requests for {g.tokens} sessions "
                     f"({g.crashed_ends} crashed ends); 2xx {row.ok}; stored {s.sessions} "
                     f"sessions, {s.crashed} crashed; rollups {s.rollup_sessions}/"
                     f"{s.rollup_crashed}; {s.commits} commits (~{per_commit:.1f} requests "
                     f"per commit)")
    problems = verdicts(rows, opts.connections)
    lines += [f"LOST: {p}" for p in problems] or [
        "every accepted request was stored once; rollups equal the sessions"]
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------


def make_stack(data_dir: Path, opts: Options) -> Stack:
    env = {}
    if opts.workers is not None:
        env["GUNICORN_WORKERS"] = str(opts.workers)
    if opts.threads is not None:
        env["GUNICORN_THREADS"] = str(opts.threads)
    return Stack(data_dir=data_dir, ports=Ports.free(),
                 limits=RateLimits(public=UNLIMITED, user=UNLIMITED, login=UNLIMITED),
                 extra_env=env, durable=opts.durable, repo_root=REPO_ROOT,
                 echo=lambda line: progress(f"  stack: {line}"))


def stack_description(opts: Options) -> str:
    def setting(name: str, given: int | None, default: str) -> str:
        return str(given or os.environ.get(name)
                   or API_ENV_DEFAULTS.get("analytics", {}).get(name) or default)

    durable = ("PostgreSQL durable (fsync, synchronous_commit on)" if opts.durable
               else "PostgreSQL not durable (fsync and synchronous_commit off)")
    server = API_SERVERS.get("analytics", "gunicorn")
    return (f"analytics api: {server} {setting('GUNICORN_WORKERS', opts.workers, '2')} workers"
            f" x {setting('GUNICORN_THREADS', opts.threads, '4')} threads; {durable}")


def run(opts: Options) -> list[Row]:
    rows: list[Row] = []
    completed = False
    run_id = os.urandom(3).hex()
    with data_directory(opts.keep) as data_dir:
        stack = make_stack(data_dir, opts)
        baseline = DirectResponseEnvoy()
        conn: psycopg.Connection | None = None
        try:
            progress(f"starting the stack in {data_dir}")
            started = time.monotonic()
            stack.up(timeout=300)  # a busy shared machine starts it slowly
            gateway = stack.urls.gateway
            progress(f"stack up in {time.monotonic() - started:.0f} s at {gateway}")
            projects = set_up_projects(gateway, ["sessions", "direct"])
            for project in projects.values():
                wait_until_known(gateway, project.api_key)
            conn = psycopg.connect(libpq_url(stack.database_url("analytics")), autocommit=True)
            baseline.start()
            rows.append(measure("baseline: Envoy direct_response", baseline.url, opts,
                                projects["sessions"], None, f"{run_id}b"))
            baseline.stop()
            rows.append(measure("sessions start+end (gateway)", gateway, opts,
                                projects["sessions"], conn, f"{run_id}g"))
            rows.append(measure("sessions start+end (api direct)",
                                stack.urls.services["analytics"], opts, projects["direct"],
                                conn, f"{run_id}d"))
            completed = True
        finally:
            baseline.stop()
            if conn is not None:
                conn.close()
            release_stack(stack, data_dir, keep=opts.keep and completed)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    if wrk_path() is None:  # not a parser error: `python -m bench` runs the other benches on
        progress(f"bench.analytics_ingest skipped: it needs wrk on PATH "
                 f"(install: {WRK_INSTALL_HINT})")
        return 1
    signal.signal(signal.SIGTERM, _on_sigterm)
    load_at_start = load_average()
    try:
        rows = run(opts)
    except KeyboardInterrupt:
        progress("interrupted; everything started was stopped")
        return 130
    except Terminated:
        progress("terminated; everything started was stopped")
        return 143
    print(report(rows, opts, machine_facts(load_at_start), stack_description(opts)))
    return 1 if verdicts(rows, opts.connections) else 0


if __name__ == "__main__":
    sys.exit(main())
