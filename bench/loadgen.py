"""Closed-loop HTTP load: N connections, each sending its next request as soon as the previous
answer arrives, for a bounded duration (and optionally a bounded request count).

Two drivers report the same `LoadResult`:
- `wrk` (preferred): C, epoll, one thread per core; driven by a generated Lua script that
  rotates through request variants (e.g. one per bearer token). Its `--latency` output is parsed.
- a Python asyncio driver on aiohttp, used when `wrk` is not on PATH. One Python process saturates
  one core at a few thousand requests per second, so on a small machine it measures the client
  as much as the server; compare its figures only with other figures from the same driver.

Both are closed-loop: latency is time from sending a request to reading its whole answer, and a
slow server lowers the offered load (no coordinated-omission correction).
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import aiohttp

Driver = Literal["auto", "wrk", "python"]

WRK_INSTALL_HINT = "apt-get install -y wrk"


@dataclass(frozen=True)
class RequestVariant:
    """One concrete request; a load run cycles through its variants in order."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class LoadSpec:
    """What to send, where, and for how long."""

    base_url: str  # scheme://host:port, no path
    variants: Sequence[RequestVariant]
    connections: int = 16
    duration: float = 10.0  # seconds; wrk rounds up to whole seconds
    max_requests: int | None = None  # stop earlier once this many answers arrived
    timeout: float = 5.0  # per request; a slower answer counts as a transport error

    def __post_init__(self) -> None:
        if not self.variants:
            raise ValueError("a load run needs at least one request variant")
        if self.connections < 1 or self.duration <= 0:
            raise ValueError("connections must be >= 1 and duration > 0")
        if self.max_requests is not None and self.max_requests < 1:
            raise ValueError("max_requests must be >= 1 when given")


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured. Latencies in milliseconds."""

    driver: str
    requests: int  # answers received, whatever their status
    non_2xx: int
    transport_errors: int  # connect/read/write failures and timeouts
    duration: float  # seconds
    rps: float  # answers per second (wrk: as wrk computes it)
    p50_ms: float
    p99_ms: float

    @property
    def errors(self) -> int:
        return self.non_2xx + self.transport_errors


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_load(spec: LoadSpec, driver: Driver = "auto") -> LoadResult:
    """Runs one load with wrk when it is available (or asked for), else the Python driver."""
    if driver == "wrk" or (driver == "auto" and wrk_path()):
        return run_wrk(spec)
    return run_python(spec)


def driver_name(driver: Driver = "auto") -> str:
    """A label for the driver `run_load(driver=...)` would use, with wrk's version."""
    wrk = wrk_path()
    if driver == "python" or wrk is None:
        return f"python asyncio + aiohttp {aiohttp.__version__}"
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
    first = (out.stdout or out.stderr).splitlines()[:1]
    return first[0].split(" Copyright")[0] if first else "wrk"


# --- wrk ------------------------------------------------------------------------------


def run_wrk(spec: LoadSpec) -> LoadResult:
    """Runs wrk with a generated Lua script and parses its report."""
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError(f"wrk is not on PATH; install it with `{WRK_INSTALL_HINT}`")
    # More threads than cores only adds contention; wrk needs connections >= threads.
    threads = max(1, min(spec.connections, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="bugnet-bench-wrk-") as tmp:
        script = Path(tmp) / "load.lua"
        script.write_text(wrk_script(spec.variants, spec.max_requests, threads))
        argv = [
            wrk,
            f"--threads={threads}",
            f"--connections={spec.connections}",
            f"--duration={max(1, math.ceil(spec.duration))}s",
            f"--timeout={max(1, math.ceil(spec.timeout))}s",
            f"--script={script}",
            "--latency",
            spec.base_url,
        ]
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=spec.duration + spec.timeout + 60,
            stdin=subprocess.DEVNULL,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): {proc.stderr or proc.stdout}")
    return parse_wrk_output(proc.stdout)


def _lua_string(value: str | bytes) -> str:
    """A Lua string literal: printable ASCII as is, every other byte as a decimal escape."""
    raw = value.encode() if isinstance(value, str) else value
    out = []
    for b in raw:
        if 32 <= b < 127 and b not in (ord("\\"), ord('"')):
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    return '"' + "".join(out) + '"'


def wrk_script(variants: Sequence[RequestVariant], max_requests: int | None, threads: int) -> str:
    """The Lua script: pre-formats every variant once per thread, then cycles through them.

    Each thread starts at a different offset so the threads do not send the same token in
    lockstep. `response()` is defined only for a bounded count, because defining it makes wrk
    hand every response to Lua, which costs client CPU the server would otherwise get
    (measured: ~12% fewer req/s against the direct-response baseline).
    """
    rows = []
    for v in variants:
        headers = ", ".join(
            f"[{_lua_string(k)}] = {_lua_string(val)}" for k, val in v.headers.items()
        )
        body = _lua_string(v.body) if v.body is not None else "nil"
        rows.append(
            f"  {{ method = {_lua_string(v.method)}, path = {_lua_string(v.path)}, "
            f"headers = {{ {headers} }}, body = {body} }},"
        )
    lines = [
        "-- generated by bench/loadgen.py",
        "local variants = {",
        *rows,
        "}",
        "local requests = {}",
        "local position = 1",
        "local thread_number = 0",
        "",
        "function setup(thread)",
        "  thread_number = thread_number + 1",
        "  thread:set('thread_index', thread_number)",
        "end",
        "",
        "function init(args)",
        "  for i, v in ipairs(variants) do",
        "    requests[i] = wrk.format(v.method, v.path, v.headers, v.body)",
        "  end",
        f"  local stride = math.max(1, math.floor(#requests / {threads}))",
        "  position = ((thread_index - 1) * stride) % #requests + 1",
        "end",
        "",
        "function request()",
        "  local r = requests[position]",
        "  position = position % #requests + 1",
        "  return r",
        "end",
    ]
    if max_requests is not None:
        lines += _wrk_bound(math.ceil(max_requests / threads))
    return "\n".join(lines) + "\n"


def _wrk_bound(per_thread: int) -> list[str]:
    """Lua that stops each thread after per_thread answers and reports how long it ran.

    wrk itself only knows a duration: a stopped thread idles until it ends, and wrk divides by
    the whole duration. So each thread notes (monotonic clock, through LuaJIT's FFI) when it
    started and stopped, and done() prints the span the threads were active, which
    parse_wrk_output uses instead.
    """
    return [
        "",
        "local ffi = require('ffi')",
        "ffi.cdef[[",
        "  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;",
        "  int clock_gettime(int clock_id, bench_timespec *tp);",
        "]]",
        "local function now()",
        "  local t = ffi.new('bench_timespec')",
        "  ffi.C.clock_gettime(1, t)  -- CLOCK_MONOTONIC",
        "  return tonumber(t.tv_sec) + tonumber(t.tv_nsec) * 1e-9",
        "end",
        "",
        "local threads = {}",
        "local base_setup = setup",
        "function setup(thread)",
        "  base_setup(thread)",
        "  table.insert(threads, thread)",
        "end",
        "",
        "local base_init = init",
        "function init(args)",
        "  base_init(args)",
        "  started_at = now()",
        "end",
        "",
        "local answered = 0",
        "function response(status, headers, body)",
        "  answered = answered + 1",
        f"  if answered >= {per_thread} then",
        "    stopped_at = now()",
        "    wrk.thread:stop()",
        "  end",
        "end",
        "",
        "function done(summary, latency, requests)",
        "  local first, last = nil, nil",
        "  for _, t in ipairs(threads) do",
        "    local a, b = t:get('started_at'), t:get('stopped_at')",
        "    if a == nil or b == nil then return end  -- a thread ran the whole duration",
        "    if first == nil or a < first then first = a end",
        "    if last == nil or b > last then last = b end",
        "  end",
        "  io.write(string.format('bench-active-seconds: %.6f\\n', last - first))",
        "end",
    ]


_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_TIME = r"([\d.]+)(us|ms|s|m|h)"


def _ms(number: str, unit: str) -> float:
    return float(number) * _TIME_UNITS[unit]


def parse_wrk_output(text: str) -> LoadResult:
    """Reads requests, duration, req/s, errors and p50/p99 from `wrk --latency` output."""
    percentiles = {
        int(m.group(1)): _ms(m.group(2), m.group(3))
        for m in re.finditer(rf"^\s+(\d+)%\s+{_TIME}\s*$", text, re.MULTILINE)
    }
    totals = re.search(rf"^\s*(\d+) requests in {_TIME}", text, re.MULTILINE)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.MULTILINE)
    if totals is None or rps is None or 50 not in percentiles or 99 not in percentiles:
        raise RuntimeError(f"cannot read wrk's report:\n{text}")
    # wrk prints these two lines only when they are non-zero.
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    # wrk counts a status above 399 here ("neither 2xx nor 3xx"); none of the benched
    # endpoints redirects, so this is the non-2xx count.
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    requests = int(totals.group(1))
    duration = _ms(totals.group(2), totals.group(3)) / 1e3
    reqs_per_s = float(rps.group(1))
    # Present when every thread stopped at the request bound before the duration ran out.
    active = re.search(r"^bench-active-seconds: ([\d.]+)$", text, re.MULTILINE)
    if active and float(active.group(1)) > 0:
        duration = float(active.group(1))
        reqs_per_s = requests / duration
    return LoadResult(
        driver="wrk",
        requests=requests,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        transport_errors=sum(int(g) for g in socket.groups()) if socket else 0,
        duration=duration,
        rps=reqs_per_s,
        p50_ms=percentiles[50],
        p99_ms=percentiles[99],
    )


# --- Python fallback ------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 when it is empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def run_python(spec: LoadSpec) -> LoadResult:
    """The asyncio driver; prints once per process how to get the faster one."""
    warn_if_no_wrk()
    return asyncio.run(_python_load(spec))


_hinted = False


def warn_if_no_wrk() -> None:
    """Tells stderr, once per process, that wrk is missing and how to install it."""
    global _hinted
    if not _hinted and wrk_path() is None:
        print(
            f"note: wrk is not installed; using the slower Python driver "
            f"(for wrk: {WRK_INSTALL_HINT})",
            file=sys.stderr,
        )
        _hinted = True


@dataclass
class _Tally:
    latencies_ms: list[float] = field(default_factory=list)
    non_2xx: int = 0
    transport_errors: int = 0
    started: int = 0  # requests handed to a connection, checked against max_requests


async def _python_load(spec: LoadSpec) -> LoadResult:
    # One pooled connection per concurrent loop, kept alive like wrk's.
    connector = aiohttp.TCPConnector(limit=spec.connections, limit_per_host=spec.connections)
    timeout = aiohttp.ClientTimeout(total=spec.timeout)
    tally = _Tally()
    # trust_env=False: a benchmark client should not pick up proxy settings from the env.
    async with aiohttp.ClientSession(
        base_url=spec.base_url, connector=connector, timeout=timeout, trust_env=False
    ) as session:
        start = time.perf_counter()
        deadline = start + spec.duration
        await asyncio.gather(
            *(_connection(session, spec, tally, deadline, i) for i in range(spec.connections))
        )
        elapsed = time.perf_counter() - start
    answered = sorted(tally.latencies_ms)
    # Like wrk, a request counts when an answer (of any status) arrived.
    return LoadResult(
        driver="python",
        requests=len(answered),
        non_2xx=tally.non_2xx,
        transport_errors=tally.transport_errors,
        duration=elapsed,
        rps=len(answered) / elapsed if elapsed > 0 else 0.0,
        p50_ms=percentile(answered, 50),
        p99_ms=percentile(answered, 99),
    )


async def _connection(
    session: aiohttp.ClientSession, spec: LoadSpec, tally: _Tally, deadline: float, index: int
) -> None:
    """One closed loop: the next request leaves when the previous answer is read."""
    n = len(spec.variants)
    position = index * max(1, n // spec.connections) % n
    while time.perf_counter() < deadline:
        if spec.max_requests is not None and tally.started >= spec.max_requests:
            return
        tally.started += 1
        v = spec.variants[position]
        position = (position + 1) % n
        sent = time.perf_counter()
        try:
            async with session.request(v.method, v.path, headers=v.headers, data=v.body) as r:
                await r.read()
                status = r.status
        except (aiohttp.ClientError, TimeoutError):
            tally.transport_errors += 1
            continue
        tally.latencies_ms.append((time.perf_counter() - sent) * 1e3)
        if not 200 <= status < 300:
            tally.non_2xx += 1
