"""Bench: the auth api through the gateway, against a direct-response Envoy baseline.

Starts a whole stack on free ports in a scratch directory (rate limits raised out of the way),
signs up --users accounts, then loads, one after the other with the same driver, connections
and duration:
  1. baseline   a separate bare Envoy answering 200 itself (bench/envoy_baseline.py);
  2. /me        GET /api/auth/me through the gateway, rotating the users' bearer tokens
                (jwt_authn verifies each token, then Flask + PostgreSQL answer);
  3. /me direct the same requests straight to the auth api's gunicorn, without the gateway;
  4. login      POST /api/auth/login through the gateway, rotating the users (argon2id).
It prints one table with each scenario's req/s as a fraction of the baseline's, measured in
the same run, because the machine is shared and absolute figures drift between runs.

Run from the repository root:  .venv/bin/python -m bench.auth_me [--duration 10] ...
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import httpx

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

REPO_ROOT = Path(__file__).resolve().parents[1]

# High enough that the per-IP buckets never refuse the bench (all load comes from 127.0.0.1).
UNLIMITED = 10_000_000
# Logins queue behind argon2id: at 16 connections on 2 busy cores an answer can take seconds,
# which wrk's default 2 s timeout would count as errors.
REQUEST_TIMEOUT = 10.0
# Below this many answers a row's p99 is one of its slowest few requests: say so in the table.
FEW_ANSWERS = 100


@dataclass(frozen=True)
class Options:
    duration: float
    login_duration: float
    warmup: float
    connections: int
    users: int
    max_requests: int | None
    driver: Driver
    keep: bool


@dataclass(frozen=True)
class BenchUser:
    email: str
    password: str
    token: str


@dataclass(frozen=True)
class Row:
    scenario: str
    result: LoadResult


class Terminated(Exception):
    """SIGTERM, turned into an exception so that every `finally` still tears down."""


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.auth_me",
        description="GET /api/auth/me and POST /api/auth/login through the gateway, "
        "as fractions of a direct-response Envoy measured in the same run.",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="seconds of load for the baseline and /me (default 10)",
    )
    parser.add_argument(
        "--login-duration",
        type=float,
        default=5.0,
        help="seconds of load for login, which is argon2id-bound (default 5)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="seconds of discarded load before each scenario (default 1; 0 skips)",
    )
    parser.add_argument(
        "--connections", type=int, default=16, help="concurrent keep-alive connections (default 16)"
    )
    parser.add_argument(
        "--users",
        type=int,
        default=50,
        help="accounts signed up; their tokens and logins rotate (default 50)",
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=None,
        help="also stop each scenario after this many answers (default: no cap)",
    )
    parser.add_argument(
        "--driver",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="wrk when on PATH (auto, the default) or the Python fallback",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the stack running afterwards (prints how to stop it)",
    )
    args = parser.parse_args(argv)
    if args.connections < 1 or args.users < 1 or args.duration <= 0 or args.login_duration <= 0:
        parser.error("--connections and --users must be >= 1, durations > 0")
    if args.max_requests is not None and args.max_requests < 1:
        parser.error("--max-requests must be >= 1")
    if args.driver == "wrk" and wrk_path() is None:
        parser.error(f"--driver wrk: wrk is not on PATH (install: {WRK_INSTALL_HINT})")
    return Options(
        duration=args.duration,
        login_duration=args.login_duration,
        warmup=max(0.0, args.warmup),
        connections=args.connections,
        users=args.users,
        max_requests=args.max_requests,
        driver=args.driver,
        keep=args.keep,
    )


def progress(line: str) -> None:
    """Progress goes to stderr so that stdout carries the report alone."""
    print(line, file=sys.stderr, flush=True)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # A second SIGTERM must not interrupt the teardown the first one started.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


# --- the stack ----------------------------------------------------------------------------


@contextlib.contextmanager
def data_directory(keep: bool) -> Iterator[Path]:
    """A fresh data directory; removed afterwards unless a bench that succeeded keeps it.

    `tests/servers.scratch_dir` puts it where PostgreSQL (run as `nobody` when we are root)
    can enter it, unlike pytest's temp dirs; the kept one goes to the same place.
    """
    if keep:
        path = Path(tempfile.mkdtemp(prefix="bugnet-bench-"))
        try:
            yield path
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return
    sys.path.insert(0, str(REPO_ROOT / "tests"))  # tests/ is not a package
    from servers import scratch_dir

    with scratch_dir("bugnet-bench-") as path:
        yield path


def make_stack(data_dir: Path) -> Stack:
    """A stack on free ports in data_dir, not started yet."""
    return Stack(
        data_dir=data_dir,
        ports=Ports.free(),
        limits=RateLimits(public=UNLIMITED, user=UNLIMITED, login=UNLIMITED),
        durable=False,  # throwaway data: fsync would only measure the disk
        repo_root=REPO_ROOT,
        echo=lambda line: progress(f"  stack: {line}"),
    )


def sign_up(gateway: str, count: int) -> list[BenchUser]:
    """Signs up `count` accounts through the gateway, a few at a time (each is an argon2 hash)."""
    run_id = secrets.token_hex(4)
    password = f"bench-{secrets.token_urlsafe(12)}"

    def one(client: httpx.Client, i: int) -> BenchUser:
        email = f"bench-{run_id}-{i}@example.com"
        r = client.post(
            "/api/auth/signup",
            json={"email": email, "password": password, "display_name": f"Bench {i}"},
        )
        if r.status_code != 201:
            raise RuntimeError(f"signup of {email} answered {r.status_code}: {r.text[:500]}")
        return BenchUser(email=email, password=password, token=r.json()["data"]["token"])

    with (
        httpx.Client(base_url=gateway, timeout=30.0, trust_env=False) as client,
        ThreadPoolExecutor(max_workers=4) as pool,
    ):
        return list(pool.map(lambda i: one(client, i), range(count)))


def check_token(gateway: str, user: BenchUser) -> None:
    """Fails early, with the answer, if the gateway refuses a fresh token."""
    r = httpx.get(
        f"{gateway}/api/auth/me",
        headers={"Authorization": f"Bearer {user.token}"},
        timeout=10.0,
        trust_env=False,
    )
    if r.status_code != 200:
        raise RuntimeError(
            f"GET /api/auth/me with a fresh token answered {r.status_code}: {r.text}"
        )


# --- scenarios ----------------------------------------------------------------------------


def me_variants(users: Sequence[BenchUser]) -> list[RequestVariant]:
    return [
        RequestVariant("GET", "/api/auth/me", {"Authorization": f"Bearer {u.token}"}) for u in users
    ]


def login_variants(users: Sequence[BenchUser]) -> list[RequestVariant]:
    return [
        RequestVariant(
            "POST",
            "/api/auth/login",
            {"Content-Type": "application/json"},
            json.dumps({"email": u.email, "password": u.password}).encode(),
        )
        for u in users
    ]


def measure(
    name: str, base_url: str, variants: Sequence[RequestVariant], duration: float, opts: Options
) -> Row:
    """Warms up (discarded: first connections, pools, caches), then measures."""
    if opts.warmup > 0:
        progress(f"warming up   {name} ({opts.warmup:g} s)")
        run_load(
            LoadSpec(
                base_url,
                variants,
                connections=opts.connections,
                duration=opts.warmup,
                timeout=REQUEST_TIMEOUT,
            ),
            opts.driver,
        )
    progress(f"measuring    {name} ({duration:g} s, {opts.connections} connections)")
    spec = LoadSpec(
        base_url,
        variants,
        connections=opts.connections,
        duration=duration,
        max_requests=opts.max_requests,
        timeout=REQUEST_TIMEOUT,
    )
    return Row(name, run_load(spec, opts.driver))


# --- report -------------------------------------------------------------------------------


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine_facts(load_at_start: str) -> list[str]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"machine   nproc {usable} (cpu_count {os.cpu_count()}), "
        f"load average (1/5/15 min) at start {load_at_start}, at end {load_average()}",
    ]


def report(rows: Sequence[Row], opts: Options, facts: Sequence[str], driver: str) -> str:
    baseline = rows[0].result.rps if rows else 0.0
    header = (
        f"{'scenario':<34}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'requests':>10}{'errors':>8}{'vs baseline':>13}"
    )
    lines = [
        f"bench.auth_me  {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC",
        *facts,
        f"driver    {driver}; {opts.connections} connections; {opts.duration:g} s per scenario "
        f"(login {opts.login_duration:g} s); {opts.warmup:g} s warm-up each; {opts.users} users",
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
        lines.append(
            f"{row.scenario + mark:<34}{r.rps:>10.1f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
            f"{r.requests:>10}{r.errors:>8}{ratio:>13.4f}"
        )
    if few:
        lines.append(
            f"* fewer than {FEW_ANSWERS} answers: req/s and percentiles are rough "
            "(0 answers: every request outlasted the duration); lengthen the duration"
        )
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------


def run(opts: Options) -> list[Row]:
    """Everything between start and teardown; tears down what it started, whatever happens."""
    rows: list[Row] = []
    completed = False
    with data_directory(opts.keep) as data_dir:
        stack = make_stack(data_dir)
        baseline = DirectResponseEnvoy()
        try:
            progress(f"starting the stack in {data_dir}")
            started = time.monotonic()
            stack.up(timeout=180)
            gateway = stack.urls.gateway
            progress(f"stack up in {time.monotonic() - started:.0f} s at {gateway}")
            progress(f"signing up {opts.users} users")
            users = sign_up(gateway, opts.users)
            check_token(gateway, users[0])

            # Started after the stack so that the stack's start-up does not share its CPU.
            baseline.start()
            # The very requests of the /me scenario, so the client does the same work.
            rows.append(
                measure(
                    "baseline: Envoy direct_response",
                    baseline.url,
                    me_variants(users),
                    opts.duration,
                    opts,
                )
            )
            baseline.stop()
            rows.append(
                measure(
                    "GET /api/auth/me (gateway)", gateway, me_variants(users), opts.duration, opts
                )
            )
            # The same requests straight to the auth api: the gap to the row above is what the
            # gateway (rate limiter, jwt_authn, access log, one more hop) costs.
            rows.append(
                measure(
                    "GET /api/auth/me (auth api direct)",
                    stack.urls.services["auth"],
                    me_variants(users),
                    opts.duration,
                    opts,
                )
            )
            rows.append(
                measure(
                    "POST /api/auth/login (gateway)",
                    gateway,
                    login_variants(users),
                    opts.login_duration,
                    opts,
                )
            )
            completed = True
        finally:
            baseline.stop()
            release_stack(stack, data_dir, keep=opts.keep and completed)
    return rows


def release_stack(stack: Stack, data_dir: Path, *, keep: bool) -> None:
    """Stop the bench's stack, or with `keep` (--keep, and only for a bench that finished: a
    failed or interrupted one cleans up) leave it running and say how to stop it."""
    if keep and stack.is_up():
        progress(f"kept: the stack runs at {stack.urls.gateway}; stop it with "
                 f"`.venv/bin/bugnet-stack --data-dir {data_dir} down` and remove {data_dir}")
    else:
        progress("stopping the stack")
        stack.down()


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    load_at_start = load_average()
    driver = driver_name(opts.driver)
    if opts.driver == "auto":
        warn_if_no_wrk()  # now, not after the stack's half-minute start
    try:
        rows = run(opts)
    except KeyboardInterrupt:
        progress("interrupted; everything started was stopped")
        return 130
    except Terminated:
        progress("terminated; everything started was stopped")
        return 143
    print(report(rows, opts, machine_facts(load_at_start), driver))
    return 0


if __name__ == "__main__":
    sys.exit(main())
