"""`bugnet-stack` as `make up/status/logs/down` run it, including SIGTERM in the middle of `up`."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from bugnet_stack import Ports

CLI = Path(sys.executable).parent / "bugnet-stack"


def cli_env(standin_root: Path, ports: Ports, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(standin_root), **extra}
    env.update({Ports.env_var(name): str(port) for name, port in ports.as_dict().items()})
    return env


def run(data_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "--data-dir", str(data_dir), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_up_twice_then_status_logs_and_down(data_dir: Path, standin_root: Path) -> None:
    ports = Ports.free()
    env = cli_env(standin_root, ports, BUGNET_RATE_LIMIT_PUBLIC="77")

    up = run(data_dir, env, "up", "--timeout", "90")
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"Bugnet is up at http://127.0.0.1:{ports.gateway}" in up.stdout
    for piece in ("postgres", "nats", "migrations", "auth-api", "envoy"):
        assert piece in up.stdout
    assert (data_dir / "envoy.yaml").read_text().startswith("# limits public=77 user=120 login=10")

    again = run(data_dir, env, "up")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already up" in again.stdout

    status = run(data_dir, env, "status")
    assert status.returncode == 0, status.stdout
    envoy_line = next(line for line in status.stdout.splitlines() if line.startswith("envoy"))
    assert "RUNNING" in envoy_line and " ok " in envoy_line

    logs = run(data_dir, env, "logs", "auth-migrate")
    assert "==> auth-migrate" in logs.stdout and "migrated" in logs.stdout
    unknown = run(data_dir, env, "logs", "nope")
    assert unknown.returncode == 1 and "no log named nope" in unknown.stderr

    down = run(data_dir, env, "down")
    assert down.returncode == 0 and "Bugnet is down" in down.stdout
    assert run(data_dir, env, "status").returncode == 3


def test_sigterm_during_up_stops_everything_started(data_dir: Path, standin_root: Path) -> None:
    env = cli_env(standin_root, Ports.free(), STANDIN_NEVER_READY="bugs")
    proc = subprocess.Popen(
        [str(CLI), "--data-dir", str(data_dir), "up", "--timeout", "90"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()  # type: ignore[union-attr]

    seen = []
    deadline = time.monotonic() + 60
    while not any(line.startswith("auth-api") for line in seen):
        assert time.monotonic() < deadline, "".join(seen)
        try:
            seen.append(lines.get(timeout=1))
        except queue.Empty:
            assert proc.poll() is None, "".join(seen)
    supervisord = psutil.Process(int((data_dir / "supervisord.pid").read_text()))
    started = [supervisord, *supervisord.children(recursive=True)]

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    _, alive = psutil.wait_procs(started, timeout=5)
    assert alive == []
