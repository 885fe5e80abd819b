"""The gateway config with a usage collector: every request's entry goes to it over gRPC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bugnet_gateway.render import (
    USAGE_CLUSTER,
    RateLimits,
    build_bootstrap,
    main,
    render_config,
)

UPSTREAMS = {"auth": ("127.0.0.1", 8101), "bugs": ("127.0.0.1", 8102)}


def bootstrap(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "listen_port": 8080,
        "admin_port": 9901,
        "upstreams": UPSTREAMS,
        "limits": RateLimits(),
    }
    return build_bootstrap(**(arguments | overrides))


def access_logs(config: dict[str, Any]) -> list[dict[str, Any]]:
    listener = config["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    logs: list[dict[str, Any]] = hcm.get("access_log", [])
    return logs


def clusters(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


def test_without_a_collector_nothing_changes() -> None:
    config = bootstrap()
    assert [log["name"] for log in access_logs(config)] == ["envoy.access_loggers.stdout"]
    assert USAGE_CLUSTER not in clusters(config)


def test_the_collector_gets_every_entry_over_grpc_with_the_api_key_header() -> None:
    config = bootstrap(usage_collector=("127.0.0.1", 8190))
    stdout, grpc_log = access_logs(config)
    assert stdout["name"] == "envoy.access_loggers.stdout"
    # The stdout log (a file under the launcher) never carries the key.
    assert "x-api-key" not in yaml.safe_dump(stdout).lower()

    assert grpc_log["name"] == "envoy.access_loggers.http_grpc"
    typed = grpc_log["typed_config"]
    assert typed["@type"].endswith("grpc.v3.HttpGrpcAccessLogConfig")
    assert typed["additional_request_headers_to_log"] == ["x-api-key"]
    common = typed["common_config"]
    assert common["transport_api_version"] == "V3"
    assert common["grpc_service"] == {"envoy_grpc": {"cluster_name": USAGE_CLUSTER}}
    assert "filter" not in grpc_log  # every request, served or refused

    cluster = clusters(config)[USAGE_CLUSTER]
    options = cluster["typed_extension_protocol_options"]
    http = options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert http["explicit_http_config"] == {"http2_protocol_options": {}}  # gRPC needs h2
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 8190}
    assert cluster["type"] == "STATIC"


def test_a_collector_by_host_name_is_resolved_and_works_without_the_stdout_log() -> None:
    config = bootstrap(usage_collector=("usage.internal", 8190), access_log=False)
    assert [log["name"] for log in access_logs(config)] == ["envoy.access_loggers.http_grpc"]
    assert clusters(config)[USAGE_CLUSTER]["type"] == "STRICT_DNS"


def test_cli_takes_the_collector_address(tmp_path: Path) -> None:
    out = tmp_path / "envoy.yaml"
    main(
        [
            "--out", str(out),
            "--listen-port", "8080",
            "--admin-port", "9901",
            "--upstream", "auth=127.0.0.1:8101",
            "--upstream", "bugs=127.0.0.1:8102",
            "--usage-collector", "127.0.0.1:8190",
        ]
    )  # fmt: skip
    expected = render_config(
        listen_port=8080,
        admin_port=9901,
        upstreams=UPSTREAMS,
        limits=RateLimits(),
        usage_collector=("127.0.0.1", 8190),
    )
    assert out.read_text() == expected
