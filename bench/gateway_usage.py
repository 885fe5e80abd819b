"""Bench: what counting every request costs the gateway, and whether every request is counted.

Envoy streams an access-log entry per request over gRPC (ALS) to the usage collector
(`python -m bugnet_gateway.usage`), which publishes per-project counts to NATS. This bench
starts, on free ports in a scratch directory: NATS, a bare direct-response Envoy
(bench/envoy_baseline.py) that plays the bugs service, and the collector; then loads, one
after the other with the same driver, connections and duration:
  1. baseline        the direct-response Envoy itself (the ceiling of machine + driver);
  2. gateway         the real gateway config (Lua, rate limit raised out of the way, JWT
                     filter, buffer, stdout access log) in front of it, without the usage log:
                     SDK requests `GET /api/bugs/settings` with an `X-API-Key`;
  3. gateway+usage   the same config plus the gRPC usage log to the collector.
The gap between rows 2 and 3 is what the usage log costs Envoy. After row 3 it waits until
the collector's published counts stop changing and compares them with the answers the driver
received (warm-up included): every answered request must be counted (`counted >= answered`);
requests the driver abandons when its time is up may be counted too, so `counted` may exceed
the answers by at most the number of connections per run. It also reports the collector's
CPU time per 10,000 requests.

Run from the repository root:  .venv/bin/python -m bench.gateway_usage [--duration 10] ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import nats as nats_client
import psutil

from bench.auth_me import (
    REQUEST_TIMEOUT,
    UNLIMITED,
    Terminated,
    _on_sigterm,
    load_average,
    machine_facts,
    progress,
)
from bench.envoy_baseline import DirectResponseEnvoy, envoy_command
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
from bugnet_common.apikeys import generate_api_key
from bugnet_common.bus.subjects import USAGE_COUNTED
from bugnet_gateway.render import RateLimits, render_config
from bugnet_stack import free_port
from bugnet_stack import nats as stack_nats
from bugnet_stack.config import LISTEN_HOST

SETTLE_SECONDS = 3.0  # counts unchanged this long = the collector published everything
SETTLE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Options:
    duration: float
    warmup: float
    connections: int
    driver: Driver


@dataclass(frozen=True)
class Row:
    scenario: str
    result: LoadResult


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gateway_usage",
        description="The gateway with and without the gRPC usage log, as fractions of a "
        "direct-response Envoy; checks that every answered request was counted.",
    )
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of load per scenario (default 10)")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds of load before each scenario (default 1; 0 skips)")
    parser.add_argument("--connections", type=int, default=16,
                        help="concurrent keep-alive connections (default 16)")
    parser.add_argument("--driver", choices=("auto", "wrk", "python"), default="auto")
    # `python -m bench` hands every benchmark the same arguments: accept the others' own.
    for ignored in ("--login-duration", "--users", "--max-requests", "--workers", "--threads"):
        parser.add_argument(ignored, help=argparse.SUPPRESS)
    for flag in ("--keep", "--durable"):
        parser.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.connections < 1 or args.duration <= 0:
        parser.error("--connections must be >= 1 and --duration > 0")
    if args.driver == "wrk" and wrk_path() is None:
        parser.error(f"--driver wrk: wrk is not on PATH (install: {WRK_INSTALL_HINT})")
    return Options(duration=args.duration, warmup=max(0.0, args.warmup),
                   connections=args.connections, driver=args.driver)


# --- processes ------------------------------------------------------------------------------


def _wait(check: object, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} not ready within {timeout:.0f}s\n{tail}")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def nats_server(workdir: Path) -> Iterator[str]:
    port, monitor = free_port(), free_port()
    store = workdir / "nats"
    store.mkdir()
    log = workdir / "nats.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            stack_nats.server_argv(port=port, monitor_port=monitor, store_dir=store),
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: stack_nats.is_healthy(f"http://{LISTEN_HOST}:{monitor}"), 20, "NATS", log)
        yield f"nats://{LISTEN_HOST}:{port}"
    finally:
        _stop(proc)


@contextmanager
def collector(workdir: Path, nats_url: str) -> Iterator[tuple[int, str, psutil.Process]]:
    port = free_port()
    name = f"bench-{uuid.uuid4().hex[:8]}"
    log = workdir / "collector.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bugnet_gateway.usage", "--port", str(port),
             "--nats-url", nats_url, "--name", name],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: b"usage collector listening" in log.read_bytes(), 20, "collector", log)
        yield port, name, psutil.Process(proc.pid)
    finally:
        _stop(proc)


@contextmanager
def gateway(workdir: Path, upstream: tuple[str, int], usage_port: int | None) -> Iterator[str]:
    listen, admin = free_port(), free_port()
    tag = "usage" if usage_port else "plain"
    config = workdir / f"envoy-{tag}.yaml"
    config.write_text(render_config(
        listen_port=listen, admin_port=admin,
        upstreams={"auth": upstream, "bugs": upstream},
        limits=RateLimits(public=UNLIMITED, user=UNLIMITED, login=UNLIMITED),
        usage_collector=(LISTEN_HOST, usage_port) if usage_port else None))
    log = workdir / f"envoy-{tag}.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [*envoy_command(), "-c", str(config), "--log-level", "warn"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway Envoy exited:\n{log.read_text()}")
        try:
            return httpx.get(f"http://{LISTEN_HOST}:{admin}/ready", timeout=1,
                             trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        _wait(ready, 30, "gateway Envoy", log)
        yield f"http://{LISTEN_HOST}:{listen}"
    finally:
        _stop(proc)


# --- counting -----------------------------------------------------------------------------


def published_total(nats_url: str, instance_name: str) -> int:
    """Requests counted in every usage_counted event of this collector."""

    async def fetch() -> int:
        nc = await nats_client.connect(nats_url)
        try:
            js = nc.jetstream()
            try:
                info = await js.stream_info("GATEWAY")
            except Exception:
                return 0
            total = 0
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg("GATEWAY", seq)
                if msg.subject != USAGE_COUNTED or not msg.data:
                    continue
                data = json.loads(msg.data)["data"]
                if data["instance"].startswith(f"{instance_name}/"):
                    total += sum(int(c["count"]) for c in data["counts"])
            return total
        finally:
            await nc.close()

    return asyncio.run(fetch())


def settled_total(nats_url: str, instance_name: str) -> tuple[int, float]:
    """The published total once it stopped changing, and how long that took."""
    started = time.monotonic()
    last, since = -1, time.monotonic()
    while time.monotonic() - started < SETTLE_TIMEOUT:
        total = published_total(nats_url, instance_name)
        if total != last:
            last, since = total, time.monotonic()
        elif time.monotonic() - since >= SETTLE_SECONDS:
            return total, since - started
        time.sleep(0.25)
    return last, time.monotonic() - started


# --- the run ------------------------------------------------------------------------------


def load(name: str, url: str, variants: list[RequestVariant], opts: Options) -> tuple[Row, int]:
    """Warm-up then measure; returns the row and the answers of both runs."""
    answered = 0
    if opts.warmup > 0:
        progress(f"warming up   {name} ({opts.warmup:g} s)")
        answered += run_load(LoadSpec(url, variants, connections=opts.connections,
                                      duration=opts.warmup, timeout=REQUEST_TIMEOUT),
                             opts.driver).requests
    progress(f"measuring    {name} ({opts.duration:g} s, {opts.connections} connections)")
    result = run_load(LoadSpec(url, variants, connections=opts.connections,
                               duration=opts.duration, timeout=REQUEST_TIMEOUT), opts.driver)
    return Row(name, result), answered + result.requests


@dataclass(frozen=True)
class Counting:
    answered: int
    counted: int
    settle_seconds: float
    cpu_seconds: float
    runs: int


def run(opts: Options) -> tuple[list[Row], Counting]:
    key = generate_api_key()
    variants = [RequestVariant("GET", "/api/bugs/settings", {"X-API-Key": key})]
    with tempfile.TemporaryDirectory(prefix="bugnet-bench-usage-") as tmp:
        workdir = Path(tmp)
        with nats_server(workdir) as nats_url, DirectResponseEnvoy() as upstream:
            target = (LISTEN_HOST, upstream.listen_port)
            rows = [load("baseline: Envoy direct_response", upstream.url, variants, opts)[0]]
            with gateway(workdir, target, None) as url:
                rows.append(load("gateway (no usage log)", url, variants, opts)[0])
            with collector(workdir, nats_url) as (port, name, proc):
                cpu_before = sum(proc.cpu_times()[:2])
                with gateway(workdir, target, port) as url:
                    row, answered = load("gateway + usage log", url, variants, opts)
                    rows.append(row)
                    progress("waiting      until the collector's published counts settle")
                    counted, settle = settled_total(nats_url, name)
                cpu = sum(proc.cpu_times()[:2]) - cpu_before
    runs = 2 if opts.warmup > 0 else 1
    return rows, Counting(answered, counted, settle, cpu, runs)


def report(rows: Sequence[Row], counting: Counting, opts: Options, facts: Sequence[str],
           driver: str) -> str:
    baseline = rows[0].result.rps if rows else 0.0
    header = (f"{'scenario':<34}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
              f"{'requests':>10}{'errors':>8}{'vs baseline':>13}")
    lines = [
        f"bench.gateway_usage  {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC",
        *facts,
        f"driver    {driver}; {opts.connections} connections; {opts.duration:g} s per scenario; "
        f"{opts.warmup:g} s warm-up each",
        "",
        header,
        "-" * len(header),
    ]
    for row in rows:
        r = row.result
        ratio = r.rps / baseline if baseline > 0 else 0.0
        lines.append(f"{row.scenario:<34}{r.rps:>10.1f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
                     f"{r.requests:>10}{r.errors:>8}{ratio:>13.4f}")
    if len(rows) == 3 and rows[1].result.rps > 0:
        lines.append(f"usage log cost: gateway+usage / gateway = "
                     f"{rows[2].result.rps / rows[1].result.rps:.4f}")
    c = counting
    per_10k = c.cpu_seconds / c.counted * 10_000 if c.counted else 0.0
    lines += [
        "",
        f"counted   {c.counted} requests published by the collector for {c.answered} answers "
        f"(warm-up included; allowed surplus <= {c.runs * opts.connections} abandoned at the "
        f"end of a run); settled {c.settle_seconds:.1f} s after the load",
        f"collector CPU {c.cpu_seconds:.2f} s = {per_10k:.3f} s per 10,000 requests",
        f"verdict   {'OK' if verdict(c, opts) else 'FAIL'}: every answered request counted",
    ]
    return "\n".join(lines)


def verdict(c: Counting, opts: Options) -> bool:
    return c.answered <= c.counted <= c.answered + c.runs * opts.connections


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    load_at_start = load_average()
    driver = driver_name(opts.driver)
    if opts.driver == "auto":
        warn_if_no_wrk()
    try:
        rows, counting = run(opts)
    except KeyboardInterrupt:
        progress("interrupted; everything started was stopped")
        return 130
    except Terminated:
        progress("terminated; everything started was stopped")
        return 143
    print(report(rows, counting, opts, machine_facts(load_at_start), driver))
    return 0 if verdict(counting, opts) else 1


if __name__ == "__main__":
    sys.exit(main())
