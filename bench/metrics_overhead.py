"""What the Prometheus metrics cost per request (bugnet_common.metrics), in microseconds.

For each mode — the process's own registry (no PROMETHEUS_MULTIPROC_DIR: tests, one process)
and multiprocess mode (the launcher's and the images' api servers: values in mmap files) — a
fresh child process measures:

| row | what |
|---|---|
| `observe_request` | the recording call alone (what the analytics SDK fast path adds per request) |
| `Flask request, instrumented` | a trivial route of an app made by `create_service_app`, called through WSGI (no HTTP server, no network) |
| `Flask request, metrics hooks removed` | the same app without the clock in front of Flask and the hook that counts |
| overhead | the difference of the two, and its share of the instrumented request |
| `scrape` | one `/metrics` exposition of what the run recorded |

`python -m bench.metrics_overhead [--requests N]`; other arguments (those `make bench` passes to
every benchmark) are ignored. Figures from a shared machine are noisy: compare the overhead
with the request, not across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any


def _child(requests: int) -> dict[str, float]:
    from flask import Blueprint
    from werkzeug.test import EnvironBuilder

    from bugnet_common import metrics
    from bugnet_common.settings import ServiceSettings
    from bugnet_common.web import create_service_app, ok

    bp = Blueprint("bench", __name__)

    @bp.get("/api/projects/<slug>/things")
    def things(slug: str) -> Any:
        return ok({"slug": slug})

    def app_with(hooks: bool) -> Any:
        app = create_service_app("bench", ServiceSettings(), blueprints=[bp])
        if not hooks:  # the clock in front of Flask, and the hook that counts
            app.wsgi_app = app.wsgi_app.__wrapped__  # type: ignore[method-assign,attr-defined]
            app.after_request_funcs[None] = [f for f in app.after_request_funcs[None]
                                             if f.__name__ != "_metrics_record"]
        return app

    environ = EnvironBuilder(path="/api/projects/space-game/things", method="GET").get_environ()

    def start_response(*_args: Any) -> None:
        return None

    def chunk(app: Any, n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            b"".join(app.wsgi_app(dict(environ), start_response))
        return (time.perf_counter() - started) / n * 1e6

    def observe_chunk(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            metrics.observe_request("bench", "POST", "/api/sessions/start", 201, 0.004)
        return (time.perf_counter() - started) / n * 1e6

    # The two apps in alternating short chunks, the best chunk of each: on a busy machine the
    # noise only ever adds time, and alternating exposes both to the same moments.
    instrumented, bare = app_with(True), app_with(False)
    for app in (instrumented, bare):
        chunk(app, 200)  # warm up (the first label set opens its files)
    size = max(requests // 20, 100)
    best = {"instrumented": float("inf"), "bare": float("inf"), "observe": float("inf")}
    for _ in range(20):
        best["instrumented"] = min(best["instrumented"], chunk(instrumented, size))
        best["bare"] = min(best["bare"], chunk(bare, size))
        best["observe"] = min(best["observe"], observe_chunk(size))

    result = dict(best)
    started = time.perf_counter()
    metrics.exposition()
    result["scrape_ms"] = (time.perf_counter() - started) * 1e3
    return result


def _run_mode(multiprocess: bool, requests: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    with tempfile.TemporaryDirectory(prefix="bench-prom-") as tmp:
        if multiprocess:
            env["PROMETHEUS_MULTIPROC_DIR"] = tmp
        out = subprocess.run([sys.executable, "-m", "bench.metrics_overhead", "--child",
                              "--requests", str(requests)], env=env, check=True,
                             capture_output=True, text=True)
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.metrics_overhead", description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args, _unknown = parser.parse_known_args(argv)
    if args.child:
        print(json.dumps(_child(args.requests)))
        return 0
    print(f"{'mode':<26} {'observe µs':>11} {'request µs':>11} {'no hooks µs':>12} "
          f"{'overhead µs':>12} {'share':>7} {'scrape ms':>10}")
    for name, multiprocess in (("own registry", False), ("multiprocess (mmap files)", True)):
        print(f"measuring {name}...", file=sys.stderr, flush=True)
        f = _run_mode(multiprocess, args.requests)
        overhead = f["instrumented"] - f["bare"]
        print(f"{name:<26} {f['observe']:>11.2f} {f['instrumented']:>11.1f} {f['bare']:>12.1f} "
              f"{overhead:>12.1f} {overhead / f['instrumented']:>7.1%} {f['scrape_ms']:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
