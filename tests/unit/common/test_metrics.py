"""Prometheus metrics: requests counted by route template, the histogram, multiprocess mode
with two processes, the worker's metrics server, and the event correlation id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import httpx
import pytest
from flask import Blueprint

from bugnet_common import metrics
from bugnet_common.bus.events import Event
from bugnet_common.logs import bind_request, current_request_id, request_bound
from bugnet_common.settings import ServiceSettings
from bugnet_common.web import create_service_app, ok


def samples(text: str, name: str, **labels: str) -> list[float]:
    return [value for n, got, value in metrics.parse_exposition(text)
            if n == name and all(got.get(k) == v for k, v in labels.items())]


def value(text: str, name: str, **labels: str) -> float:
    found = samples(text, name, **labels)
    assert len(found) == 1, (name, labels, found)
    return found[0]


def make_app(service: str):  # type: ignore[no-untyped-def]
    bp = Blueprint("things", __name__)

    @bp.get("/api/things/<thing_id>")
    def get_thing(thing_id: str):  # type: ignore[no-untyped-def]
        return ok({"id": thing_id})

    @bp.post("/api/things")
    def boom():  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    app = create_service_app(service, ServiceSettings(), blueprints=[bp])
    app.testing = True
    return app


def test_requests_are_counted_under_their_route_template_never_the_raw_path() -> None:
    service = f"svc{uuid.uuid4().hex[:6]}"
    client = make_app(service).test_client()
    assert client.get("/api/things/a1").status_code == 200
    assert client.get("/api/things/b2").status_code == 200
    assert client.get("/api/nothing/here").status_code == 404
    assert client.put("/api/things/a1").status_code == 405
    assert client.post("/api/things").status_code == 500
    assert client.open("/api/things/a1", method="BREW").status_code == 405

    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.content_type.startswith("text/plain")
    text = resp.get_data(as_text=True)
    assert value(text, "bugnet_http_requests_total", service=service, method="GET",
                 route="/api/things/<thing_id>", status="200") == 2
    assert value(text, "bugnet_http_requests_total", service=service, method="GET",
                 route="<unmatched>", status="404") == 1
    assert value(text, "bugnet_http_requests_total", service=service, method="PUT",
                 route="<unmatched>", status="405") == 1
    assert value(text, "bugnet_http_requests_total", service=service, method="POST",
                 route="/api/things", status="500") == 1
    # A made-up method is no label of its own.
    assert value(text, "bugnet_http_requests_total", service=service, method="OTHER",
                 route="<unmatched>", status="405") == 1
    assert not [s for s in metrics.parse_exposition(text) if "a1" in s[1].get("route", "")]
    # The histogram: two observations of the template, in the +Inf bucket and the count.
    assert value(text, "bugnet_http_request_duration_seconds_count", service=service,
                 method="GET", route="/api/things/<thing_id>") == 2
    assert value(text, "bugnet_http_request_duration_seconds_bucket", service=service,
                 method="GET", route="/api/things/<thing_id>", le="+Inf") == 2
    assert value(text, "bugnet_http_request_duration_seconds_sum", service=service,
                 method="GET", route="/api/things/<thing_id>") > 0


def test_observations_land_in_the_right_buckets() -> None:
    service = f"svc{uuid.uuid4().hex[:6]}"
    metrics.observe_request(service, "GET", "/api/x", 200, 0.003)
    metrics.observe_request(service, "GET", "/api/x", 200, 0.2)
    metrics.observe_request(service, "GET", "/api/x", 200, 30.0)
    text = metrics.exposition().decode()
    labels = {"service": service, "method": "GET", "route": "/api/x"}
    bucket = "bugnet_http_request_duration_seconds_bucket"
    assert value(text, bucket, le="0.002", **labels) == 0
    assert value(text, bucket, le="0.005", **labels) == 1
    assert value(text, bucket, le="0.25", **labels) == 2
    assert value(text, bucket, le="10.0", **labels) == 2
    assert value(text, bucket, le="+Inf", **labels) == 3


def test_the_metrics_path_is_not_routed_by_the_gateway() -> None:
    from bugnet_gateway.routes import resolve

    assert resolve("GET", "/metrics") is None
    assert resolve("GET", "/api/metrics") is None


CHILD = textwrap.dedent("""
    import sys
    from bugnet_common import metrics
    for _ in range(int(sys.argv[1])):
        metrics.observe_request("mp", "POST", "/api/sessions/start", 201, 0.004)
    metrics.EVENTS_HANDLED.labels("mp", "mp-consumer", "ok").inc(int(sys.argv[1]))
""")


def test_multiprocess_mode_sums_the_values_of_every_process(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, metrics.MULTIPROC_ENV: str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(n)], env=env)
             for n in (3, 4)]
    assert [p.wait(60) for p in procs] == [0, 0]
    assert len(list(tmp_path.glob("*.db"))) >= 2  # one file set per process

    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    text = metrics.exposition().decode()
    assert value(text, "bugnet_http_requests_total", service="mp", route="/api/sessions/start",
                 status="201") == 7
    assert value(text, "bugnet_http_request_duration_seconds_count", service="mp",
                 route="/api/sessions/start") == 7
    assert value(text, "bugnet_events_handled_total", service="mp", consumer="mp-consumer",
                 outcome="ok") == 7


def test_worker_metrics_server_serves_metrics_and_health() -> None:
    state = {"healthy": False}
    server = metrics.MetricsServer("127.0.0.1", 0,
                                   health=lambda: (state["healthy"], "detail here")).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        metrics.count_events("wsvc", "wsvc-things", ["acked", "acked", "nak", "parked",
                                                     "duplicate"])
        resp = httpx.get(base + "/metrics")
        assert resp.status_code == 200
        text = resp.text
        assert value(text, "bugnet_events_handled_total", service="wsvc",
                     consumer="wsvc-things", outcome="ok") == 2
        assert value(text, "bugnet_events_handled_total", service="wsvc",
                     consumer="wsvc-things", outcome="retried") == 1
        assert value(text, "bugnet_events_handled_total", service="wsvc",
                     consumer="wsvc-things", outcome="parked") == 1
        unhealthy = httpx.get(base + "/healthz")
        assert unhealthy.status_code == 503 and unhealthy.json()["detail"] == "detail here"
        state["healthy"] = True
        assert httpx.get(base + "/healthz").status_code == 200
        assert httpx.get(base + "/nope").status_code == 404
    finally:
        server.stop()


def test_events_created_in_a_request_carry_its_id_as_correlation_id() -> None:
    with request_bound("req-abc-123"):
        inside = Event(type="bugnet.bugs.v1.bug_created", source="bugs", data={})
        explicit_none = Event(type="t", source="s", data={}, correlation_id=None)
        chosen = Event(type="t", source="s", data={}, correlation_id="other-id")
        # What arrives from the bus keeps what was sent, whatever is bound here.
        decoded = Event.from_json(json.dumps({"id": "e1", "type": "t", "source": "s",
                                              "data": {}}).encode())
    outside = Event(type="t", source="s", data={})
    assert inside.correlation_id == "req-abc-123"
    assert explicit_none.correlation_id == "req-abc-123"
    assert chosen.correlation_id == "other-id"
    assert decoded.correlation_id is None
    assert outside.correlation_id is None
    assert Event.from_json(inside.to_json()).correlation_id == "req-abc-123"


def test_request_bound_restores_what_was_bound_before() -> None:
    bind_request("outer")
    try:
        with request_bound("inner"):
            assert current_request_id() == "inner"
            with request_bound(None):
                assert current_request_id() is None
            assert current_request_id() == "inner"
        assert current_request_id() == "outer"
    finally:
        bind_request(None)
