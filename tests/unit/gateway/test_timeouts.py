"""The gateway's client-side timeouts: slow or stalled clients cannot hold streams for long."""

from __future__ import annotations

from bugnet_gateway.render import RateLimits, build_bootstrap


def test_stalled_headers_and_bodies_are_cut_off() -> None:
    bootstrap = build_bootstrap(listen_port=8080, admin_port=9901,
                                upstreams={"auth": ("127.0.0.1", 8101)},
                                limits=RateLimits(public=30, user=120, login=10))
    listener = bootstrap["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]

    assert hcm["request_headers_timeout"] == "10s"
    assert hcm["stream_idle_timeout"] == "30s"
