"""Where the launcher's processes serve their metrics: a multiprocess directory per api, a
/metrics + /healthz port per worker, and the list `bugnet-stack status` prints."""

from __future__ import annotations

from pathlib import Path

from bugnet_stack import SERVICES, Ports, Stack


def test_each_api_gets_its_own_multiprocess_dir_and_each_worker_its_own_port(
        data_dir: Path) -> None:
    ports = Ports.free()
    stack = Stack(data_dir=data_dir, ports=ports,
                  components=("postgres", "nats", "services"))
    programs = {p.name: p for p in stack.programs()}
    dirs = {programs[f"{s}-api"].environment["PROMETHEUS_MULTIPROC_DIR"] for s in SERVICES}
    assert dirs == {str(stack.prometheus_dir(s)) for s in SERVICES} and len(dirs) == 4
    worker_ports = {programs[f"{s}-worker"].environment["WORKER_METRICS_PORT"]
                    for s in SERVICES}
    assert worker_ports == {str(ports.worker_metrics(s)) for s in SERVICES}
    assert len(worker_ports | {str(ports.service(s)) for s in SERVICES}) == 8
    for s in SERVICES:
        assert programs[f"{s}-worker"].environment["WORKER_METRICS_HOST"] == "127.0.0.1"
        # Workers are one process each: no multiprocess directory.
        assert "PROMETHEUS_MULTIPROC_DIR" not in programs[f"{s}-worker"].environment


def test_up_empties_the_multiprocess_dirs_of_an_earlier_run(data_dir: Path) -> None:
    stack = Stack(data_dir=data_dir, ports=Ports.free(), components=("postgres", "nats",
                                                                       "services"))
    stale = stack.prometheus_dir("bugs") / "counter_1234.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    stack._fresh_prometheus_dirs()  # what `up` does before it starts anything
    assert not stale.exists()
    assert all(stack.prometheus_dir(s).is_dir() for s in SERVICES)


def test_metrics_endpoints_name_every_process_that_serves_them(data_dir: Path) -> None:
    ports = Ports.free()
    endpoints = Stack(data_dir=data_dir, ports=ports).metrics_endpoints()
    assert endpoints["bugs-api"] == f"http://127.0.0.1:{ports.bugs}/metrics"
    assert endpoints["integrations-worker"] == \
        f"http://127.0.0.1:{ports.integrations_worker_metrics}/metrics"
    assert endpoints["envoy"] == f"http://127.0.0.1:{ports.envoy_admin}/stats/prometheus"
    assert {f"{s}-{kind}" for s in SERVICES for kind in ("api", "worker")} <= set(endpoints)
    assert Ports.env_var("bugs_worker_metrics") == "BUGNET_BUGS_WORKER_METRICS_PORT"
