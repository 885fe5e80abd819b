"""The gateway's client-side timeouts: slow or stalled clients cannot hold streams for long."""

from __future__ import annotations

from pathlib import Path

from bugnet_common import gunicorn_conf
from bugnet_gateway.render import UPSTREAM_IDLE_TIMEOUT_S, RateLimits, build_bootstrap
from bugnet_gateway.routes import SERVICES
from bugnet_stack.config import GRANIAN_KEEPALIVE_MS
from bugnet_stack.stack import api_argv

REPO = Path(__file__).resolve().parents[3]


def test_stalled_headers_and_bodies_are_cut_off() -> None:
    bootstrap = build_bootstrap(listen_port=8080, admin_port=9901,
                                upstreams={"auth": ("127.0.0.1", 8101)},
                                limits=RateLimits(public=30, user=120, login=10))
    listener = bootstrap["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]

    assert hcm["request_headers_timeout"] == "10s"
    assert hcm["stream_idle_timeout"] == "30s"


def test_envoy_closes_idle_upstream_connections_before_any_service_server_does() -> None:
    """A server that closes an idle pooled connection just as Envoy reuses it fails the request
    on it (a 503, not retried for a POST): Envoy's idle timeout must be the shorter one."""
    bootstrap = build_bootstrap(listen_port=8080, admin_port=9901,
                                upstreams={s: ("127.0.0.1", 8101 + i)
                                           for i, s in enumerate(SERVICES)},
                                limits=RateLimits(public=30, user=120, login=10))
    clusters = {c["name"]: c for c in bootstrap["static_resources"]["clusters"]}
    for service in SERVICES:
        options = clusters[service]["typed_extension_protocol_options"][
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        assert options["common_http_protocol_options"]["idle_timeout"] == \
            f"{UPSTREAM_IDLE_TIMEOUT_S}s"

    granian = api_argv("analytics", Path("/bin"), 8000, {})
    granian_keepalive_s = int(granian[granian.index("--http1-header-read-timeout") + 1]) / 1000
    entrypoint = (REPO / "deploy/docker/entrypoint.sh").read_text()
    assert f"--http1-header-read-timeout {GRANIAN_KEEPALIVE_MS}" in entrypoint
    assert min(granian_keepalive_s, gunicorn_conf.keepalive) >= UPSTREAM_IDLE_TIMEOUT_S + 10
