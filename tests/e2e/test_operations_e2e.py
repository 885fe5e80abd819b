"""Operations through the whole stack: a request id chosen by the client followed from Envoy
into the bugs api's log and the integrations worker's log; every api's /metrics (on its own
port, never through the gateway), every worker's /metrics and /healthz, and Envoy's admin
/stats/prometheus."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from e2e.support import assert_envelope_error, auth, signup
from e2e.test_integrations_e2e import project_with_webhook, wait_for
from integration.integrations.receivers import Receiver

from bugnet_common.metrics import parse_exposition
from bugnet_stack import SERVICES, Stack


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
    return lines


def with_request_id(stack: Stack, name: str, request_id: str) -> list[dict[str, Any]]:
    return [line for line in log_lines(stack.log_files()[name])
            if line.get("request_id") == request_id]


def scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    resp = httpx.get(url, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return list(parse_exposition(resp.text))


def total(found: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, got, v in found
               if n == name and all(got.get(k) == want for k, want in labels.items()))


def test_a_chosen_request_id_is_followed_from_the_gateway_to_the_worker(
        stack: Stack, new_client: Callable[..., httpx.Client]) -> None:
    api = new_client()
    token, _, _ = signup(api)
    receiver = Receiver().start()
    try:
        project, _hook = project_with_webhook(api, token, receiver.url + "/in", ["bug_created"])
        request_id = f"e2e-ops-{uuid.uuid4().hex}"
        resp = api.post(f"/projects/{project['slug']}/bugs", headers={
            **auth(token), "X-Request-Id": request_id},
            json={"title": "Clipping through walls", "category": "gameplay"})
        assert resp.status_code == 201, resp.text
        assert resp.headers["x-request-id"] == request_id
        receiver.wait_for(1, timeout=30)
    finally:
        receiver.stop()

    # The gateway's access log, the api that took the request, the worker that delivered.
    envoy = wait_for(lambda: [line for line in log_lines(stack.log_files()["envoy"])
                              if line.get("request_id") == request_id], what="envoy log line")
    assert envoy[0]["path"].endswith("/bugs") and int(envoy[0]["status"]) == 201
    api_lines = wait_for(lambda: with_request_id(stack, "bugs-api", request_id),
                         what="bugs api log line")
    assert {"route": "/api/projects/<slug>/bugs", "status": 201, "method": "POST"}.items() \
        <= api_lines[0].items()
    worker_lines = wait_for(lambda: with_request_id(stack, "integrations-worker", request_id),
                            what="integrations worker log line")
    attempt = [line for line in worker_lines if line["message"] == "delivery attempt"]
    assert attempt and attempt[0]["event"] == "bug_created" and attempt[0]["delivered"] is True


def test_every_api_counts_its_requests_by_route_template(
        stack: Stack, new_client: Callable[..., httpx.Client]) -> None:
    api = new_client()
    token, _, _ = signup(api)
    project, _hook = project_with_webhook(api, token, "http://127.0.0.1:9/never",
                                          ["bug_created"])
    slug = project["slug"]
    assert api.get(f"/projects/{slug}/bugs", headers=auth(token)).status_code == 200
    wait_for(lambda: api.get(f"/projects/{slug}/analytics",
                             headers=auth(token)).status_code == 200,
             what="project known to analytics")
    game = new_client()
    started = game.post("/sessions/start", headers={"X-API-Key": project["api_key"]},
                        json={"session_token": uuid.uuid4().hex, "platform": "windows",
                              "game_version": "1.0"})
    assert started.status_code in (200, 201), started.text

    expected = {
        "auth": ("POST", "/api/auth/signup", "201"),
        "bugs": ("GET", "/api/projects/<slug>/bugs", "200"),
        "analytics": ("GET", "/api/projects/<slug>/analytics", "200"),
        "integrations": ("POST", "/api/projects/<slug>/webhooks", "201"),
    }
    for service, (method, route, status) in expected.items():
        found = scrape(f"{stack.urls.services[service]}/metrics")
        assert total(found, "bugnet_http_requests_total", service=service, method=method,
                     route=route, status=status) >= 1, service
        assert total(found, "bugnet_http_request_duration_seconds_count", service=service,
                     method=method, route=route) >= 1, service
        # Raw paths never become labels.
        assert not [labels for _, labels, _ in found if slug in labels.get("route", "")]
        # The outbox backlog of the service's own database, read at scrape time.
        assert [n for n, labels, _ in found if n == "bugnet_outbox_backlog"
                and labels.get("service") == service], service
        # Summed over the server's processes (multiprocess mode).
        assert list(stack.prometheus_dir(service).glob("*.db")), service
    # The analytics SDK fast path is counted too, under its fixed path.
    analytics = scrape(f"{stack.urls.services['analytics']}/metrics")
    assert total(analytics, "bugnet_http_requests_total", service="analytics",
                 route="/api/sessions/start", status=str(started.status_code)) >= 1

    # Not public: the gateway answers its own 404 for /metrics.
    assert_envelope_error(new_client(prefix="").get("/metrics"), 404)


CONSUMERS = {"auth": "auth-revocations", "bugs": "bugs-users",
             "analytics": "analytics-readmodels", "integrations": "integrations-events"}


def test_every_worker_serves_consumer_lag_and_health(stack: Stack) -> None:
    for service in SERVICES:
        base = stack.urls.worker_metrics[service]
        health = httpx.get(f"{base}/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok", service

        def lag_reported(service: str = service) -> bool:
            found = scrape(f"{stack.urls.worker_metrics[service]}/metrics")
            return any(n == "bugnet_consumer_pending" and labels == {
                "service": service, "consumer": CONSUMERS[service]} for n, labels, _ in found)

        wait_for(lag_reported, timeout=20, what=f"{service} consumer lag")
    bugs = scrape(f"{stack.urls.worker_metrics['bugs']}/metrics")
    assert total(bugs, "bugnet_outbox_published_total", service="bugs") >= 1
    integrations = scrape(f"{stack.urls.worker_metrics['integrations']}/metrics")
    assert total(integrations, "bugnet_events_handled_total", service="integrations",
                 outcome="ok") >= 1


def test_envoy_admin_serves_prometheus_stats(stack: Stack) -> None:
    resp = httpx.get(f"{stack.urls.envoy_admin}/stats/prometheus", timeout=10)
    assert resp.status_code == 200
    names = {n for n, _, _ in parse_exposition(resp.text)}
    assert any(n.startswith("envoy_http_downstream_rq") for n in names)
    assert any(n.startswith("envoy_cluster_upstream_rq") for n in names)
    assert stack.metrics_endpoints()["envoy"] == f"{stack.urls.envoy_admin}/stats/prometheus"
