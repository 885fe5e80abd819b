"""Prometheus metrics of every api and worker process.

Invariants:
- The `route` label is the route *template* (Flask's url rule, e.g.
  `/api/projects/<slug>/bugs`, or a fast path's fixed path), `"<unmatched>"` when nothing
  matched (404, 405): never the raw path, whose ids would make one series per request.
- With `PROMETHEUS_MULTIPROC_DIR` set (api servers run several worker processes: gunicorn,
  granian), every process writes its values to mmap files in that directory and `/metrics`
  sums them over the directory (prometheus_client's multiprocess mode). The directory must be
  empty when the server starts (the launcher and the container entrypoint wipe it). Without
  the variable (tests, a single process) the process's own registry is served.
- Values that live in the database (the outbox backlog) are read at scrape time by a
  collector with a bounded query and a 1 s statement timeout; when the database does not
  answer they are left out, and the scrape still succeeds.
- Recording a request costs two clock reads, one dict lookup and three value writes (cached
  label children): measured (bench/metrics_overhead.py, a busy 2-core machine) 1.4 µs per
  call with the process registry and 3.2 µs in multiprocess mode, and 7 / 12 µs per Flask
  request with the hooks, on a trivial route answering in ~80 µs.

The metric objects are module globals, as prometheus_client expects (one set per process);
every series carries the `service` label, so several apps in one test process stay apart.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_STARTED = "bugnet.metrics.started"  # WSGI environ key: when the request reached the app
UNMATCHED = "<unmatched>"
# Past this many unpublished rows the backlog gauge reads this many (the count stays cheap).
BACKLOG_CAP = 100_000
BACKLOG_STATEMENT_TIMEOUT_MS = 1000

# Request latencies: SDK ingestion answers in milliseconds, exports take seconds.
_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "bugnet_http_requests", "HTTP requests answered, by route template and status",
    ["service", "method", "route", "status"])
HTTP_DURATION = Histogram(
    "bugnet_http_request_duration_seconds", "Time to answer an HTTP request, by route template",
    ["service", "method", "route"], buckets=_LATENCY_BUCKETS)
EVENTS_HANDLED = Counter(
    "bugnet_events_handled", "Events a consumer handled: ok (applied and acked), duplicate "
    "(already applied; acked), retried (nak'ed with a delay), parked",
    ["service", "consumer", "outcome"])
OUTBOX_PUBLISHED = Counter(
    "bugnet_outbox_published", "Outbox rows the relay published to JetStream", ["service"])
OUTBOX_PUBLISH_FAILED = Counter(
    "bugnet_outbox_publish_failed", "Outbox publishes that failed (retried with backoff)",
    ["service"])
CONSUMER_PENDING = Gauge(
    "bugnet_consumer_pending", "Messages of a durable consumer not yet delivered (JetStream "
    "num_pending), refreshed by the worker every few seconds",
    ["service", "consumer"], multiprocess_mode="livemax")
CONSUMER_ACK_PENDING = Gauge(
    "bugnet_consumer_ack_pending", "Messages delivered to a durable consumer and not yet acked "
    "(JetStream num_ack_pending)", ["service", "consumer"], multiprocess_mode="livemax")
WEBHOOK_ATTEMPTS = Counter(
    "bugnet_webhook_delivery_attempts", "Delivery attempts (webhooks and Discord) by what came "
    "of them: delivered, retry (failed, tried again later), failed (for good), undeliverable",
    ["channel", "outcome"])
WEBHOOK_RETRIES = Counter(
    "bugnet_webhook_delivery_retries", "Delivery attempts that were retries (a delivery's "
    "second attempt or later)", ["channel"])


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


# ---- recording --------------------------------------------------------------------------------

_children: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}
_children_lock = threading.Lock()


# Any other method (a client may send any token) is counted as OTHER: a bounded label set.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(service: str, method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request and its latency under `route` (a template, see above)."""
    if method not in _METHODS:
        method = "OTHER"
    key = (service, method, route, status)
    pair = _children.get(key)
    if pair is None:
        with _children_lock:
            pair = _children.get(key)
            if pair is None:
                pair = (HTTP_REQUESTS.labels(service, method, route, str(status)),
                        HTTP_DURATION.labels(service, method, route))
                _children[key] = pair
    pair[0].inc()
    pair[1].observe(seconds)


SLOW_REQUEST_SECONDS = 1.0
_access_log = logging.getLogger("bugnet.requests")


def log_request(method: str, route: str, status: int, seconds: float, *,
                every: bool) -> None:
    """One line for an answered request (the request id comes from the logs' context): for
    every request when `every` (setting `log_requests`), else only slow or failed ones."""
    slow = seconds >= SLOW_REQUEST_SECONDS
    if not (every or slow or status >= 500):
        return
    level = logging.WARNING if slow or status >= 500 else logging.INFO
    _access_log.log(level, "request", extra={"method": method, "route": route,
                                             "status": status,
                                             "duration_ms": round(seconds * 1000, 1)})


# ---- exposition -------------------------------------------------------------------------------

def exposition(extra: Sequence[Collector] = ()) -> bytes:
    """The text exposition of this process (or of every process of the multiprocess dir), and
    of `extra` collectors (read now)."""
    path = multiprocess_dir()
    if path is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)
        out = generate_latest(registry)
    else:
        out = generate_latest(REGISTRY)
    if extra:
        more = CollectorRegistry(auto_describe=False)
        for collector in extra:
            more.register(collector)
        out += generate_latest(more)
    return out


class OutboxBacklog(Collector):
    """`bugnet_outbox_backlog{service}` (unpublished outbox rows, capped at BACKLOG_CAP) and
    `bugnet_outbox_oldest_age_seconds{service}` (0 when none), read at scrape time."""

    def __init__(self, service: str, engine: sa.Engine, outbox: sa.Table) -> None:
        self.service = service
        self.engine = engine
        self.table = outbox.name

    def read(self) -> tuple[int, float]:
        with self.engine.connect() as conn, conn.begin():
            conn.execute(sa.text(f"SET LOCAL statement_timeout = {BACKLOG_STATEMENT_TIMEOUT_MS}"))
            # Both use the partial index on unpublished rows (ix_outbox_pending).
            count = conn.execute(sa.text(
                f"SELECT count(*) FROM (SELECT 1 FROM {self.table} "
                "WHERE published_at IS NULL LIMIT :cap) AS backlog"), {"cap": BACKLOG_CAP}
            ).scalar_one()
            age = conn.execute(sa.text(
                f"SELECT extract(epoch FROM clock_timestamp() - created_at) FROM {self.table} "
                "WHERE published_at IS NULL ORDER BY seq LIMIT 1")).scalar()
        return int(count), max(float(age or 0.0), 0.0)

    def collect(self) -> Iterable[Metric]:
        try:
            count, age = self.read()
        except Exception as exc:  # the database is down or slow: leave these out
            log.warning("outbox backlog not read", extra={"error": f"{type(exc).__name__}"})
            return []
        backlog = GaugeMetricFamily("bugnet_outbox_backlog", "Outbox rows not yet published "
                                    f"(capped at {BACKLOG_CAP})", labels=["service"])
        backlog.add_metric([self.service], count)
        oldest = GaugeMetricFamily("bugnet_outbox_oldest_age_seconds", "Age of the oldest "
                                   "unpublished outbox row (0 when none)", labels=["service"])
        oldest.add_metric([self.service], age)
        return [backlog, oldest]


# ---- the api side -----------------------------------------------------------------------------

def _app_collectors(app: Flask, service: str) -> list[Collector]:
    """The outbox backlog of the app's database, once the runtime is attached to the app."""
    found: list[Collector] | None = app.extensions.get("bugnet.metrics.collectors")
    if found is None:
        runtime = app.extensions.get("bugnet.runtime")
        if runtime is None:
            return []
        found = [OutboxBacklog(service, runtime.db.engine, runtime.tables.outbox)]
        app.extensions["bugnet.metrics.collectors"] = found
    return found


def instrument_flask(app: Flask, service: str) -> None:
    """Count and time every request of `app` by route template; serve `GET /metrics`.

    /metrics is outside /api, so the gateway never routes to it: it is scraped on the api's
    own port."""
    settings = app.extensions.get("bugnet.settings")
    every = bool(getattr(settings, "log_requests", False))

    # The clock starts in front of Flask (its request context included); the answer is counted
    # in the last after_request hook, where the matched url rule is still known.
    flask_wsgi = app.wsgi_app

    def timed_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ[_STARTED] = time.perf_counter()
        return flask_wsgi(environ, start_response)

    timed_wsgi.__wrapped__ = flask_wsgi  # type: ignore[attr-defined]
    app.wsgi_app = timed_wsgi  # type: ignore[method-assign]

    @app.after_request
    def _metrics_record(resp: Response) -> Response:
        req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
        started = req.environ.get(_STARTED)
        if started is not None:
            seconds = time.perf_counter() - started
            rule = req.url_rule
            route = rule.rule if rule is not None else UNMATCHED
            status = resp.status_code
            observe_request(service, req.method, route, status, seconds)
            if every or status >= 500 or seconds >= SLOW_REQUEST_SECONDS:
                log_request(req.method, route, status, seconds, every=every)
        return resp

    def metrics_view() -> Response:
        return Response(exposition(_app_collectors(app, service)),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])


# ---- the worker side ----------------------------------------------------------------------------

Health = Callable[[], tuple[bool, str]]


class MetricsServer:
    """A worker's tiny HTTP server: `/metrics` and `/healthz` (200 while `health` says so),
    in a daemon thread."""

    def __init__(self, host: str, port: int, health: Health,
                 extra: Callable[[], Sequence[Collector]] = lambda: ()) -> None:
        self.health = health
        self.extra = extra
        self.httpd = ThreadingHTTPServer((host, port), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                       name="metrics-server")

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> MetricsServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def _handler(server: MetricsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, exposition(server.extra()), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                healthy, detail = server.health()
                self._send(200 if healthy else 503, json.dumps(
                    {"status": "ok" if healthy else "unhealthy", "detail": detail}).encode(),
                    "application/json")
            else:
                self._send(404, b'{"ok":false,"error":"No such endpoint"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes every few seconds would drown the worker's own log lines

    return Handler


def count_events(service: str, consumer: str, results: Iterable[str]) -> None:
    """Count what `inbox.handle_batch` did with each message of a batch."""
    names = {"acked": "ok", "duplicate": "duplicate", "nak": "retried", "parked": "parked"}
    tally: dict[str, int] = {}
    for result in results:
        outcome = names.get(result, result)
        tally[outcome] = tally.get(outcome, 0) + 1
    for outcome, n in tally.items():
        EVENTS_HANDLED.labels(service, consumer, outcome).inc(n)


def set_consumer_lag(service: str, consumer: str, pending: int, ack_pending: int) -> None:
    CONSUMER_PENDING.labels(service, consumer).set(pending)
    CONSUMER_ACK_PENDING.labels(service, consumer).set(ack_pending)


def parse_exposition(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of each sample of a text exposition (tests and tools read it)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            yield sample.name, dict(sample.labels), float(sample.value)
