"""Bench: SDK bug submits (`POST /api/bugs/submit`), against a direct-response Envoy baseline.

Issue 3's target: SDK submits of a ~2 KB report, stored, through Envoy with 32 concurrent
clients at >= 1,000/s with p99 < 100 ms on a 2-core machine (GlitchTip accepts and stores about
200 events/s on the same machine).

Starts a whole stack on free ports in a scratch directory (rate limits raised out of the way),
signs up one user, creates one project per scenario through the API (each scenario starts with
an empty project and its own API key), then loads, one after the other with the same driver,
connections and duration:
  1. baseline   a separate bare Envoy answering 200 itself (bench/envoy_baseline.py), sent the
                very requests of scenario 2;
  2. gameplay   POST /api/bugs/submit through the gateway: ~2 KB JSON reports of category
                "gameplay" (title, description with a short stack trace, steps, platform,
                version, OS, device), each one a new bug;
  3. crash      the same through the gateway with category "crash": the reports repeat a few
                crashes, so most of them are occurrences of an existing bug (grouping);
  4. direct     scenario 2's requests straight to the bugs api's server: the gap to row 2 is
                what the gateway costs.
After each scenario it waits until the rows stop changing and counts them in the bugs database:
every 2xx answer must be a stored bug (occurrence, for crashes). wrk abandons the requests in
flight when its time is up, and the service may still commit those, so `stored` may exceed
the 2xx count by at most the number of connections; fewer stored rows than 2xx answers would
be a lost report, and fails the bench.

Run from the repository root:  .venv/bin/python -m bench.sdk_submit [--duration 15] ...
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
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
from bench.loadgen import (
    WRK_INSTALL_HINT,
    Driver,
    LoadResult,
    LoadSpec,
    RequestVariant,
    driver_name,
    run_load,
    warn_if_no_wrk,
    wrk_path,
)
from bugnet_gateway.render import RateLimits
from bugnet_stack import Ports, Stack
from bugnet_stack.config import API_ENV_DEFAULTS, API_SERVERS
from bugs.settings import BugsSettings

REPO_ROOT = Path(__file__).resolve().parents[1]

SUBMIT = "/api/bugs/submit"
# Queued answers on a saturated 2-core machine can take a while; wrk's default 2 s would count
# slow successes as errors (and the service would still store them).
REQUEST_TIMEOUT = 10.0
FEW_ANSWERS = 100
# Distinct request bodies the driver cycles through (titles, versions, devices and players vary).
VARIANTS = 256
# Distinct crashes the crash scenario repeats: each is one bug, every report an occurrence.
CRASHES = 4
# Rows are counted once they have not changed for this long after the load stopped.
SETTLE_SECONDS = 1.0
SETTLE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Options:
    duration: float
    warmup: float
    connections: int
    max_requests: int | None
    driver: Driver
    durable: bool
    workers: int | None
    threads: int | None
    keep: bool


@dataclass(frozen=True)
class Row:
    scenario: str
    result: LoadResult
    stored: int | None = None  # rows the scenario left in the bugs database (None: not counted)
    note: str = ""

    @property
    def ok(self) -> int:
        return self.result.requests - self.result.non_2xx


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sdk_submit",
        description="POST /api/bugs/submit (2 KB reports, stored) through the gateway and "
        "straight to the bugs api, as fractions of a direct-response Envoy in the same run.",
    )
    parser.add_argument("--duration", type=float, default=15.0,
                        help="seconds of load per scenario (default 15)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of discarded load before each scenario (default 2; 0 skips)")
    parser.add_argument("--connections", type=int, default=32,
                        help="concurrent keep-alive connections (default 32)")
    parser.add_argument("--max-requests", type=int, default=None,
                        help="also stop each scenario after this many answers (default: no cap)")
    parser.add_argument("--driver", choices=("auto", "wrk", "python"), default="auto",
                        help="wrk when on PATH (auto, the default) or the Python fallback")
    parser.add_argument("--durable", action="store_true",
                        help="PostgreSQL with fsync and synchronous_commit on, as in production "
                        "(default: off, like the other benches and the tests)")
    parser.add_argument("--workers", type=int, default=None,
                        help="GUNICORN_WORKERS for every service api (default: the launcher's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="GUNICORN_THREADS for every service api (default: the launcher's)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the stack running afterwards (prints how to stop it)")
    # `python -m bench` hands every benchmark the same arguments: accept auth_me's own.
    parser.add_argument("--login-duration", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--users", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.connections < 1 or args.duration <= 0:
        parser.error("--connections must be >= 1 and --duration > 0")
    if args.max_requests is not None and args.max_requests < 1:
        parser.error("--max-requests must be >= 1")
    if (args.workers is not None and args.workers < 1) or (args.threads is not None
                                                           and args.threads < 1):
        parser.error("--workers and --threads must be >= 1")
    if args.driver == "wrk" and wrk_path() is None:
        parser.error(f"--driver wrk: wrk is not on PATH (install: {WRK_INSTALL_HINT})")
    return Options(duration=args.duration, warmup=max(0.0, args.warmup),
                   connections=args.connections, max_requests=args.max_requests,
                   driver=args.driver, durable=args.durable, workers=args.workers,
                   threads=args.threads, keep=args.keep)


# --- the stack ----------------------------------------------------------------------------


def make_stack(data_dir: Path, opts: Options) -> Stack:
    env = {}
    if opts.workers is not None:
        env["GUNICORN_WORKERS"] = str(opts.workers)
    if opts.threads is not None:
        env["GUNICORN_THREADS"] = str(opts.threads)
    return Stack(
        data_dir=data_dir,
        ports=Ports.free(),
        limits=RateLimits(public=UNLIMITED, user=UNLIMITED, login=UNLIMITED),
        extra_env=env,
        durable=opts.durable,
        repo_root=REPO_ROOT,
        echo=lambda line: progress(f"  stack: {line}"),
    )


@dataclass(frozen=True)
class BenchProject:
    id: str
    slug: str
    api_key: str


def set_up_projects(gateway: str, names: Sequence[str]) -> dict[str, BenchProject]:
    """One user and one project per name, through the gateway like a studio would."""
    run_id = os.urandom(4).hex()
    with httpx.Client(base_url=gateway, timeout=30.0, trust_env=False) as client:
        r = client.post("/api/auth/signup", json={
            "email": f"bench-sdk-{run_id}@example.com", "password": f"bench-{os.urandom(12).hex()}",
            "display_name": "Bench Studio"})
        if r.status_code != 201:
            raise RuntimeError(f"signup answered {r.status_code}: {r.text[:500]}")
        auth = {"Authorization": f"Bearer {r.json()['data']['token']}"}
        projects = {}
        for name in names:
            # The bugs service learns about the new user from an event: retry briefly.
            deadline = time.monotonic() + 30
            while True:
                r = client.post("/api/projects", headers=auth,
                                json={"name": f"Bench {name} {run_id}"})
                if r.status_code == 201 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if r.status_code != 201:
                raise RuntimeError(f"creating a project answered {r.status_code}: {r.text[:500]}")
            data = r.json()["data"]
            projects[name] = BenchProject(id=data["id"], slug=data["slug"], api_key=data["api_key"])
    return projects


def check_submit(base_url: str, variant: RequestVariant) -> None:
    """Fails early, with the answer, if one submit is not a 201."""
    r = httpx.request(variant.method, base_url + variant.path, headers=dict(variant.headers),
                      content=variant.body, timeout=30.0, trust_env=False)
    if r.status_code != 201:
        raise RuntimeError(f"POST {SUBMIT} answered {r.status_code}: {r.text[:500]}")


# --- request bodies -----------------------------------------------------------------------

_PLACES = ["bridge", "harbour", "mine shaft", "castle gate", "swamp", "market", "lighthouse",
           "ice cave", "arena", "train station", "observatory", "sewer"]
_THINGS = ["player", "companion", "horse", "cart", "boss", "merchant", "boat", "elevator"]
_PROBLEMS = ["falls through the floor", "gets stuck in the wall", "stops responding",
             "teleports back to the checkpoint", "loses its collision", "floats above the ground"]
_DEVICES = ["AMD Ryzen 7 5800X, NVIDIA GeForce RTX 3070 (driver 546.33), 32 GB RAM",
            "Intel Core i5-8400 @ 2.80GHz, NVIDIA GeForce GTX 1060 6GB (driver 537.58), 16 GB",
            "Apple M2 Pro, 16 GB unified memory", "Steam Deck (AMD Custom APU 0405), 16 GB",
            "Intel Core i7-12700H, Intel Iris Xe + RTX 3060 Laptop GPU, 16 GB RAM"]
_SYSTEMS = [("Windows", "Windows 11 Pro 23H2 (10.0.22631)"),
            ("Windows", "Windows 10 Home 22H2 (10.0.19045)"),
            ("macOS", "macOS 14.4.1 (23E224)"), ("Linux", "SteamOS 3.5.7 (Linux 6.1.52-valve9)"),
            ("Linux", "Ubuntu 22.04.4 LTS (Linux 6.5.0-27-generic)")]
_VERSIONS = ["1.4.0", "1.4.1", "1.4.2", "1.5.0-beta.2"]

# Unity-style traces: the crash scenario's fingerprints come from their message and frames.
_CRASHES = [
    ("NullReferenceException: Object reference not set to an instance of an object",
     ["Game.Inventory.InventoryUI:Refresh () (at Assets/Scripts/UI/InventoryUI.cs:{n})",
      "Game.Inventory.InventoryUI:OnItemAdded (Game.Items.Item item) (at Assets/Scripts/UI/InventoryUI.cs:88)",
      "Game.Inventory.Bag:Add (Game.Items.Item item) (at Assets/Scripts/Inventory/Bag.cs:41)",
      "Game.World.Pickup:OnTriggerEnter (UnityEngine.Collider other) (at Assets/Scripts/World/Pickup.cs:23)"]),
    ("IndexOutOfRangeException: Index was outside the bounds of the array.",
     ["Game.AI.PathGrid:GetNode (System.Int32 x, System.Int32 y) (at Assets/Scripts/AI/PathGrid.cs:{n})",
      "Game.AI.Pathfinder:FindPath (UnityEngine.Vector3 from, UnityEngine.Vector3 to) (at Assets/Scripts/AI/Pathfinder.cs:140)",
      "Game.AI.EnemyBrain:Update () (at Assets/Scripts/AI/EnemyBrain.cs:57)"]),
    ("InvalidOperationException: Collection was modified; enumeration operation may not execute.",
     ["System.Collections.Generic.List`1+Enumerator[T].MoveNext () (at <7e3f1c8b>:0)",
      "Game.Quests.QuestLog:CompleteAll () (at Assets/Scripts/Quests/QuestLog.cs:{n})",
      "Game.Quests.QuestGiver:Interact (Game.Player.PlayerController p) (at Assets/Scripts/Quests/QuestGiver.cs:64)"]),
    ("KeyNotFoundException: The given key 'sfx_door_open' was not present in the dictionary.",
     ["System.Collections.Generic.Dictionary`2[TKey,TValue].get_Item (TKey key) (at <7e3f1c8b>:0)",
      "Game.Audio.SoundBank:Play (System.String id) (at Assets/Scripts/Audio/SoundBank.cs:{n})",
      "Game.World.Door:Open () (at Assets/Scripts/World/Door.cs:31)"]),
]


def _common(i: int) -> dict[str, str]:
    platform, os_info = _SYSTEMS[i % len(_SYSTEMS)]
    return {
        "platform": platform, "game_version": _VERSIONS[i % len(_VERSIONS)], "os_info": os_info,
        "device_info": _DEVICES[i % len(_DEVICES)],
        "reporter_name": f"player{1000 + i}", "steam_id": str(76561198000000000 + i),
    }


_LOG_LINES = ["Autosave written (slot 2)", "Streaming cell 14,9 loaded in 38 ms",
              "Physics step took 21.4 ms (budget 16.6)", "Input device changed: gamepad",
              "Shader variant compiled: Lit/Forward", "Dialogue line 2231 queued"]
_LEVELS = ["INFO", "INFO", "WARN", "DEBUG"]


def _log_tail(i: int, lines: int) -> str:
    return "\n".join(
        f"[{12 + i % 10:02d}:{(i * 7 + k) % 60:02d}:{(i * 13 + k * 7) % 60:02d}] "
        f"{_LEVELS[k % 4]} {_LOG_LINES[(i + k) % len(_LOG_LINES)]}"
        for k in range(lines))


def gameplay_report(i: int) -> dict[str, str]:
    place, thing = _PLACES[i % len(_PLACES)], _THINGS[(i // 3) % len(_THINGS)]
    problem = _PROBLEMS[(i // 7) % len(_PROBLEMS)]
    return {
        "title": f"The {thing} {problem} near the {place} (report {i})",
        "description": (
            f"While travelling to the {place} with the {thing}, it {problem}. It happened "
            f"twice in a row after loading the autosave, and once after a fresh start. The "
            f"game keeps running but the quest cannot be completed.\n\n"
            f"Last error in the log:\n"
            f"NullReferenceException: Object reference not set to an instance of an object\n"
            f"  at Game.Physics.GroundProbe:Sample () (at Assets/Scripts/Physics/GroundProbe.cs:{40 + i % 50})\n"
            f"  at Game.Movement.Locomotion:FixedUpdate () (at Assets/Scripts/Movement/Locomotion.cs:212)\n"
            f"  at Game.Movement.MountController:Tick (System.Single dt) (at Assets/Scripts/Movement/MountController.cs:97)\n"
            f"\n--- recent logs ---\n{_log_tail(i, 16)}"),
        "steps_to_reproduce": (
            f"1. Load the autosave in chapter {2 + i % 5}\n2. Travel to the {place} with the "
            f"{thing}\n3. Walk along the edge of the {place} towards the east exit\n"
            f"4. After about ten seconds the {thing} {problem}"),
        "category": "gameplay",
        "priority": ["low", "medium", "medium", "high"][i % 4],
        **_common(i),
    }


def crash_report(i: int) -> dict[str, str]:
    message, frames = _CRASHES[i % CRASHES]
    trace = "\n".join("  " + f.replace("{n}", str(100 + (i * 31) % 400)) for f in frames)
    return {
        "title": f"[Error] {message}"[:120],
        "description": f"{message}\n{trace}\n\n--- recent logs ---\n{_log_tail(i, 24)}",
        "steps_to_reproduce": "Reported automatically by the SDK's error hook.",
        "category": "crash",
        "priority": "high",
        **_common(i),
    }


def submit_variants(api_key: str, report: str) -> list[RequestVariant]:
    make = gameplay_report if report == "gameplay" else crash_report
    headers = {"Content-Type": "application/json", "X-API-Key": api_key}
    return [RequestVariant("POST", SUBMIT, headers, json.dumps(make(i)).encode())
            for i in range(VARIANTS)]


# --- counting what was stored -------------------------------------------------------------


def libpq_url(sqlalchemy_url: str) -> str:
    scheme, rest = sqlalchemy_url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgresql") else sqlalchemy_url


def count_stored(conn: psycopg.Connection, project_id: str, kind: str) -> int:
    """Bugs of the project, or, for crashes, their occurrence rows (one per accepted report)."""
    if kind == "gameplay":
        query = "SELECT count(*) FROM bugs WHERE project_id = %s"
    else:
        query = ("SELECT count(*) FROM occurrences o JOIN bugs b ON b.id = o.bug_id "
                 "WHERE b.project_id = %s")
    row = conn.execute(query, (project_id,)).fetchone()
    return int(row[0]) if row else 0


def settled_count(conn: psycopg.Connection, project_id: str, kind: str) -> int:
    """The count once it stopped changing: requests abandoned by the driver still commit."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    last, since = count_stored(conn, project_id, kind), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = count_stored(conn, project_id, kind)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= SETTLE_SECONDS:
            break
    return last


def crash_consistency(conn: psycopg.Connection, project_id: str) -> str:
    """The crash project's bugs, and whether their counters equal their occurrence rows."""
    bugs, counted, rows = conn.execute(
        "SELECT count(*), coalesce(sum(occurrences), 0), "
        "(SELECT count(*) FROM occurrences o JOIN bugs b ON b.id = o.bug_id "
        " WHERE b.project_id = %s) FROM bugs WHERE project_id = %s",
        (project_id, project_id)).fetchone() or (0, 0, 0)
    state = "=" if counted == rows else "!="
    return f"{bugs} bugs, sum(occurrences) {counted} {state} {rows} rows"


def outbox_backlog(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()
    return int(row[0]) if row else 0


def wait_for_outbox(conn: psycopg.Connection, timeout: float = 120.0) -> int:
    """Lets the worker relay the previous scenario's events before the next one starts."""
    deadline = time.monotonic() + timeout
    backlog = outbox_backlog(conn)
    while backlog and time.monotonic() < deadline:
        time.sleep(0.5)
        backlog = outbox_backlog(conn)
    return backlog


# --- scenarios ----------------------------------------------------------------------------


def load(base_url: str, variants: Sequence[RequestVariant], duration: float, opts: Options,
         max_requests: int | None) -> LoadResult:
    spec = LoadSpec(base_url, variants, connections=opts.connections, duration=duration,
                    max_requests=max_requests, timeout=REQUEST_TIMEOUT)
    return run_load(spec, opts.driver)


def measure(name: str, base_url: str, variants: Sequence[RequestVariant], opts: Options,
            conn: psycopg.Connection | None = None, project: BenchProject | None = None,
            kind: str = "gameplay") -> Row:
    """Warms up (discarded), counts the project's rows, measures, counts them again."""
    if opts.warmup > 0:
        progress(f"warming up   {name} ({opts.warmup:g} s)")
        load(base_url, variants, opts.warmup, opts, None)
    before = 0
    if conn is not None and project is not None:
        before = settled_count(conn, project.id, kind)
        backlog = wait_for_outbox(conn)
        if backlog:
            progress(f"  note: {backlog} outbox rows still unpublished")
    progress(f"measuring    {name} ({opts.duration:g} s, {opts.connections} connections)")
    result = load(base_url, variants, opts.duration, opts, opts.max_requests)
    if conn is None or project is None:
        return Row(name, result)
    stored = settled_count(conn, project.id, kind) - before
    note = crash_consistency(conn, project.id) if kind == "crash" else ""
    return Row(name, result, stored, note)


# --- report -------------------------------------------------------------------------------


def verdicts(rows: Sequence[Row], connections: int) -> list[str]:
    """Whether every accepted submit was stored; an empty list when all were."""
    lost = []
    for row in rows:
        if row.stored is None:
            continue
        # Answers wrk never read (in flight at the cut-off, or timed out) may still be stored.
        unread = connections + row.result.transport_errors
        if row.stored < row.ok:
            lost.append(f"{row.scenario}: {row.ok - row.stored} accepted submits are not stored")
        elif row.stored > row.ok + unread:
            lost.append(f"{row.scenario}: {row.stored - row.ok} more rows than 2xx answers")
    return lost


def report(rows: Sequence[Row], opts: Options, facts: Sequence[str], driver: str,
           body_bytes: int, stack_facts: str) -> str:
    baseline = rows[0].result.rps if rows else 0.0
    header = (f"{'scenario':<36}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}"
              f"{'errors':>8}{'2xx':>8}{'stored':>8}{'vs baseline':>13}")
    lines = [
        f"bench.sdk_submit  {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC",
        *facts,
        f"driver    {driver}; {opts.connections} connections; {opts.duration:g} s per scenario; "
        f"{opts.warmup:g} s warm-up each; report bodies ~{body_bytes} bytes",
        f"stack     {stack_facts}",
        "",
        header,
        "-" * len(header),
    ]
    few = False
    for row in rows:
        r = row.result
        ratio = r.rps / baseline if baseline > 0 else 0.0
        mark = " *" if r.requests < FEW_ANSWERS else ""
        few = few or bool(mark)
        stored = "-" if row.stored is None else str(row.stored)
        ok = "-" if row.stored is None else str(row.ok)
        lines.append(f"{row.scenario + mark:<36}{r.rps:>9.1f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
                     f"{r.requests:>10}{r.errors:>8}{ok:>8}{stored:>8}{ratio:>13.4f}")
    for row in rows:
        if row.note:
            lines.append(f"  {row.scenario}: {row.note}")
    if few:
        lines.append(f"* fewer than {FEW_ANSWERS} answers: req/s and percentiles are rough")
    lines.append(
        "stored: rows counted in the bugs database after the load settled (bugs; occurrence rows "
        "for crashes); it may exceed 2xx by the requests in flight when wrk stopped "
        f"(<= {opts.connections}), never fall below it")
    problems = verdicts(rows, opts.connections)
    lines += [f"LOST: {p}" for p in problems] or ["every accepted submit was stored"]
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------


def stack_description(opts: Options) -> str:
    """How the bugs api runs: its server's workers x threads and batch writers, and PostgreSQL."""
    def setting(name: str, given: int | None, default: str) -> str:
        return str(given or os.environ.get(name) or API_ENV_DEFAULTS.get("bugs", {}).get(name)
                   or default)

    workers = setting("GUNICORN_WORKERS", opts.workers, "2")
    threads = setting("GUNICORN_THREADS", opts.threads, "4")
    writers = os.environ.get("BUGS_INGEST_WRITERS") or str(BugsSettings().ingest_writers)
    durable = ("PostgreSQL durable (fsync, synchronous_commit on)" if opts.durable
               else "PostgreSQL not durable (fsync and synchronous_commit off)")
    return (f"bugs api: {API_SERVERS.get('bugs', 'gunicorn')} {workers} workers x {threads} threads, {writers} ingest "
            f"writer(s) per worker; {durable}")


def run(opts: Options) -> tuple[list[Row], int]:
    """Everything between start and teardown; tears down what it started, whatever happens."""
    rows: list[Row] = []
    completed = False
    body_bytes = 0
    with data_directory(opts.keep) as data_dir:
        stack = make_stack(data_dir, opts)
        baseline = DirectResponseEnvoy()
        conn: psycopg.Connection | None = None
        try:
            progress(f"starting the stack in {data_dir}")
            started = time.monotonic()
            stack.up(timeout=180)
            gateway = stack.urls.gateway
            progress(f"stack up in {time.monotonic() - started:.0f} s at {gateway}")
            projects = set_up_projects(gateway, ["gameplay", "crash", "direct"])
            gameplay = submit_variants(projects["gameplay"].api_key, "gameplay")
            crash = submit_variants(projects["crash"].api_key, "crash")
            direct = submit_variants(projects["direct"].api_key, "gameplay")
            body_bytes = round(sum(len(v.body or b"") for v in gameplay) / len(gameplay))
            check_submit(gateway, gameplay[0])
            conn = psycopg.connect(libpq_url(stack.database_url("bugs")), autocommit=True)

            # Started after the stack so that the stack's start-up does not share its CPU.
            baseline.start()
            rows.append(measure("baseline: Envoy direct_response", baseline.url, gameplay, opts))
            baseline.stop()
            rows.append(measure("submit gameplay (gateway)", gateway, gameplay, opts, conn,
                                projects["gameplay"], "gameplay"))
            rows.append(measure("submit crash, grouped (gateway)", gateway, crash, opts, conn,
                                projects["crash"], "crash"))
            rows.append(measure("submit gameplay (bugs api direct)", stack.urls.services["bugs"],
                                direct, opts, conn, projects["direct"], "gameplay"))
            completed = True
        finally:
            baseline.stop()
            if conn is not None:
                conn.close()
            release_stack(stack, data_dir, keep=opts.keep and completed)
    return rows, body_bytes


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    load_at_start = load_average()
    driver = driver_name(opts.driver)
    if opts.driver == "auto":
        warn_if_no_wrk()
    try:
        rows, body_bytes = run(opts)
    except KeyboardInterrupt:
        progress("interrupted; everything started was stopped")
        return 130
    except Terminated:
        progress("terminated; everything started was stopped")
        return 143
    print(report(rows, opts, machine_facts(load_at_start), driver, body_bytes,
                 stack_description(opts)))
    return 1 if verdicts(rows, opts.connections) else 0


if __name__ == "__main__":
    sys.exit(main())
