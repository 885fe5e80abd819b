"""The whole stack through the Python API, with stand-in services and gateway renderer."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import standins

from bugnet_stack import SERVICES, Ports, Stack, StartupFailed
from bugnet_stack.net import port_is_free
from servers import scratch_dir


@pytest.fixture(scope="module")
def full_stack(standin_root: Path) -> Iterator[Stack]:
    render = standins.load_render(standin_root)
    with scratch_dir("bugnet-stack-full-") as data_dir:
        stack = Stack(
            data_dir=data_dir,
            ports=Ports.free(),
            limits=render.RateLimits(public=1000, user=2000, login=50),
            extra_env={"PYTHONPATH": str(standin_root)},
            envoy_config=render.render_config,
            durable=False,
        )
        with stack:
            yield stack


def test_gateway_answers_api_health_through_envoy(full_stack: Stack) -> None:
    response = httpx.get(f"{full_stack.urls.gateway}/api/health")
    assert response.status_code == 200
    assert response.json()["service"] == "auth"


def test_each_service_gets_its_prefixed_environment(full_stack: Stack) -> None:
    env = httpx.get(f"{full_stack.urls.gateway}/api/health").json()["env"]
    ports = full_stack.ports
    assert env["AUTH_DATABASE_URL"] == full_stack.database_url("auth")
    assert env["AUTH_NATS_URL"] == f"nats://127.0.0.1:{ports.nats}"
    assert env["AUTH_JWKS_URL"] == f"http://127.0.0.1:{ports.auth}/api/auth/jwks.json"
    assert env["AUTH_ENV"] == "dev"
    assert env["AUTH_DATA_DIR"] == str(full_stack.data_dir / "auth")
    assert json.loads(env["AUTH_SERVICE_URLS"]) == {
        s: f"http://127.0.0.1:{ports.service(s)}" for s in SERVICES if s != "auth"
    }
    for service in SERVICES:
        assert httpx.get(f"{full_stack.urls.services[service]}/healthz").status_code == 200


def test_rate_limits_reach_the_envoy_config(full_stack: Stack) -> None:
    config = (full_stack.data_dir / "envoy.yaml").read_text()
    assert config.startswith("# limits public=1000 user=2000 login=50")


def test_status_reports_every_process_running_and_healthy(full_stack: Stack) -> None:
    statuses = {s.name: s for s in full_stack.status()}
    expected = {
        "postgres",
        "nats",
        "envoy",
        "gateway-usage",
        *(f"{s}-api" for s in SERVICES),
        *(f"{s}-worker" for s in SERVICES),
    }
    assert set(statuses) == expected
    # A process that already answers its probe may still be STARTING for supervisord (startsecs).
    unhealthy = [
        s
        for s in statuses.values()
        if not (s.state in ("STARTING", "RUNNING") and s.healthy and s.pid > 0)
    ]
    assert unhealthy == []
    assert {"auth-migrate", "auth-api", "envoy", "supervisord"} <= set(full_stack.log_files())


def test_supervisord_restarts_a_worker_that_dies(full_stack: Stack) -> None:
    before = full_stack.supervisor.info("bugs-worker")["pid"]
    os.kill(before, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        info = full_stack.supervisor.info("bugs-worker")
        if info["statename"] == "RUNNING" and info["pid"] not in (0, before):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"bugs-worker was not restarted: {info}")


def test_a_failing_migration_stops_everything_and_shows_its_log(standin_root: Path) -> None:
    render = standins.load_render(standin_root)
    with scratch_dir("bugnet-stack-failing-") as data_dir:
        stack = Stack(
            data_dir=data_dir,
            ports=Ports.free(),
            extra_env={"PYTHONPATH": str(standin_root), "STANDIN_FAIL_MIGRATION": "bugs"},
            envoy_config=render.render_config,
            limits=render.RateLimits(),
            durable=False,
        )
        with pytest.raises(StartupFailed) as caught:
            stack.up(timeout=60)
        assert caught.value.name == "bugs-migrate"
        assert "exit status 3" in str(caught.value)
        assert "bugs stand-in migration fails on purpose" in str(caught.value)
        assert not stack.is_up()
        assert psutil.pid_exists(os.getpid())
        assert port_is_free(stack.ports.postgres) and port_is_free(stack.ports.nats)


def test_reload_gateway_rerenders_envoy_and_restarts_it_alone(full_stack: Stack,
                                                              standin_root: Path) -> None:
    render = standins.load_render(standin_root)
    before = {row.name: row.pid for row in full_stack.status()}
    original = full_stack.limits
    full_stack.limits = render.RateLimits(public=3000, user=2000, login=50)
    try:
        full_stack.reload_gateway(timeout=60)
        config = (full_stack.data_dir / "envoy.yaml").read_text()
        assert config.startswith("# limits public=3000 user=2000 login=50")
        after = {row.name: row.pid for row in full_stack.status()}
        assert after["envoy"] != before["envoy"]
        assert {n: p for n, p in after.items() if n != "envoy"} == {
            n: p for n, p in before.items() if n != "envoy"}
        assert httpx.get(f"{full_stack.urls.gateway}/api/health").status_code == 200
    finally:
        full_stack.limits = original
        full_stack.reload_gateway(timeout=60)
