"""render.py's options for several Envoy replicas: ``--rate-limit-service`` (the global rate
limit), ``--ratelimit-config`` (that service's config) and ``--stats-port``; without them the
rendered config is the one-replica config with local buckets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bugnet_gateway.render import (
    ADMIN_CLUSTER,
    GLOBAL_RATELIMIT,
    LOCAL_RATELIMIT,
    RATELIMIT_CLUSTER,
    RATELIMIT_DOMAIN,
    RateLimits,
    build_bootstrap,
    build_ratelimit_config,
    main,
    render_config,
    render_ratelimit_config,
)

UPSTREAMS = {"auth": ("auth-api", 8000), "bugs": ("bugs-api", 8000)}
BASE: dict[str, Any] = {"listen_port": 8080, "admin_port": 9901, "upstreams": UPSTREAMS,
                        "limits": RateLimits()}


def filters(config: dict[str, Any]) -> list[str]:
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"]
    return [f["name"] for f in hcm["http_filters"]]


def test_without_the_options_nothing_changes() -> None:
    config = build_bootstrap(**BASE)
    assert LOCAL_RATELIMIT in filters(config) and GLOBAL_RATELIMIT not in filters(config)
    assert [listener["name"] for listener in config["static_resources"]["listeners"]] == ["public"]
    names = {c["name"] for c in config["static_resources"]["clusters"]}
    assert RATELIMIT_CLUSTER not in names and ADMIN_CLUSTER not in names
    assert render_config(**BASE) == render_config(**BASE, rate_limit_service=None,
                                                  stats_port=None)


def test_the_global_rate_limit_replaces_the_local_buckets_in_place() -> None:
    local = filters(build_bootstrap(**BASE))
    config = build_bootstrap(**BASE, rate_limit_service=("ratelimit", 8081))
    assert filters(config) == [GLOBAL_RATELIMIT if n == LOCAL_RATELIMIT else n for n in local]
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"]
    typed = next(f for f in hcm["http_filters"] if f["name"] == GLOBAL_RATELIMIT)["typed_config"]
    assert typed["domain"] == RATELIMIT_DOMAIN
    assert typed["failure_mode_deny"] is False
    assert typed["enable_x_ratelimit_headers"] == "DRAFT_VERSION_03"
    assert typed["rate_limit_service"]["grpc_service"]["envoy_grpc"]["cluster_name"] == (
        RATELIMIT_CLUSTER)
    cluster = next(c for c in config["static_resources"]["clusters"]
                   if c["name"] == RATELIMIT_CLUSTER)
    assert cluster["type"] == "STRICT_DNS"
    options = cluster["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "http2_protocol_options" in options["explicit_http_config"]  # gRPC


def test_the_stats_listener_forwards_only_two_admin_paths() -> None:
    config = build_bootstrap(**BASE, listen_host="0.0.0.0", stats_port=9090)
    stats = config["static_resources"]["listeners"][1]
    assert stats["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": 9090}
    routes = stats["filter_chains"][0]["filters"][0]["typed_config"]["route_config"][
        "virtual_hosts"][0]["routes"]
    forwarded = [r["match"]["path"] for r in routes if "route" in r]
    assert forwarded == ["/stats/prometheus", "/ready"]
    assert routes[-1] == {"match": {"prefix": "/"}, "direct_response": {"status": 404}}
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    admin = next(c for c in config["static_resources"]["clusters"] if c["name"] == ADMIN_CLUSTER)
    endpoint = admin["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 9901}
    with pytest.raises(ValueError, match="stats port"):
        build_bootstrap(**BASE, stats_port=9901)


def test_the_service_config_has_one_counter_per_client_and_class() -> None:
    data = build_ratelimit_config(RateLimits(public=7, user=8, login=9))
    assert data["domain"] == RATELIMIT_DOMAIN
    flat = {(d["value"], inner["key"]): inner["rate_limit"] for d in data["descriptors"]
            for inner in d["descriptors"]}
    assert flat == {
        ("public", "remote_address"): {"unit": "minute", "requests_per_unit": 7},
        ("user", "remote_address"): {"unit": "minute", "requests_per_unit": 8},
        ("login", "remote_address"): {"unit": "minute", "requests_per_unit": 9},
    }


def test_cli_prints_the_service_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--ratelimit-config", "--public-limit", "7", "--user-limit", "8",
                 "--login-limit", "9"]) == 0
    text = capsys.readouterr().out
    assert text == render_ratelimit_config(RateLimits(public=7, user=8, login=9))
    assert yaml.safe_load(text) == build_ratelimit_config(RateLimits(public=7, user=8, login=9))
    assert "--public-limit 7 --user-limit 8 --login-limit 9" in text.splitlines()[1]


def test_cli_renders_envoy_with_both_options(tmp_path: Path) -> None:
    out = tmp_path / "envoy.yaml"
    assert main(["--out", str(out), "--listen-port", "8080", "--admin-port", "9901",
                 "--upstream", "auth=auth-api:8000", "--rate-limit-service", "ratelimit:8081",
                 "--stats-port", "9090"]) == 0
    assert yaml.safe_load(out.read_text()) == build_bootstrap(
        listen_port=8080, admin_port=9901, upstreams={"auth": ("auth-api", 8000)},
        limits=RateLimits(), rate_limit_service=("ratelimit", 8081), stats_port=9090)


@pytest.mark.parametrize("argv, message", [
    (["--admin-port", "9901"], "--listen-port, --admin-port"),
    (["--ratelimit-config", "--login-limit", "0"], "at least 1"),
    (["--listen-port", "1", "--admin-port", "2", "--rate-limit-service", "nope"], "HOST:PORT"),
])
def test_cli_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
