"""What a stack is made of and where it listens.

Every port has one environment variable (`BUGNET_<NAME>_PORT`) and one CLI flag; both name the
same field of `Ports`, so an error about a busy port can always tell the user what to change.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

from bugnet_stack.errors import StackError
from bugnet_stack.net import free_port

LISTEN_HOST = "127.0.0.1"

SERVICES: tuple[str, ...] = ("auth", "bugs", "analytics", "integrations")

# Per-service defaults of an api's gunicorn (bugnet_common/gunicorn_conf.py reads them); the
# environment and `Stack(extra_env=...)` override them. The bugs api batches SDK submits of
# concurrent requests into one transaction (bugs/sdk/ingest.py): a request thread mostly waits
# there, and more of them in flight make bigger batches (measured with bench/sdk_submit.py).
API_ENV_DEFAULTS: dict[str, dict[str, str]] = {
    "bugs": {"GUNICORN_THREADS": "32"},
    # Session starts/ends and perf snapshots batch the same way (analytics/batching.py).
    "analytics": {"GUNICORN_THREADS": "32"},
}

# The HTTP server of each api: gunicorn (gthread) unless named here. The analytics api takes
# the hottest traffic (a start and an end per play session); granian parses HTTP in Rust and
# answered 6,500 session requests/s straight to the api where gunicorn answered 2,600, and
# 2,900/s against 2,200/s through Envoy (bench/analytics_ingest.py, same machine, same run).
# The bugs api's SDK submits went from 422/s to 518/s through Envoy with it (bench/sdk_submit.py).
# GUNICORN_WORKERS / GUNICORN_THREADS size either server (granian: --workers, --blocking-threads).
API_SERVERS: dict[str, str] = {"analytics": "granian", "bugs": "granian"}
# granian closes an idle keep-alive connection when its HTTP/1 header read timeout runs out
# (default 30 s). Envoy must close first (bugnet_gateway.render.UPSTREAM_IDLE_TIMEOUT_S), so it
# is set to the longest granian allows; deploy/docker/entrypoint.sh passes the same.
GRANIAN_KEEPALIVE_MS = 60_000

# What `Stack(components=...)` accepts, in start order. Each needs the ones before it,
# except that postgres and nats are independent of each other.
COMPONENTS: tuple[str, ...] = ("postgres", "nats", "services", "gateway")

_REQUIRES: dict[str, tuple[str, ...]] = {
    "postgres": (),
    "nats": (),
    "services": ("postgres", "nats"),
    "gateway": ("services",),
}

PORT_LABELS: dict[str, str] = {
    "gateway": "gateway (Envoy listener)",
    "envoy_admin": "Envoy admin",
    "gateway_usage": "gateway usage collector (gRPC)",
    "auth": "auth api",
    "bugs": "bugs api",
    "analytics": "analytics api",
    "integrations": "integrations api",
    "postgres": "PostgreSQL",
    "nats": "NATS",
    "nats_monitor": "NATS monitoring",
    "auth_worker_metrics": "auth worker /metrics",
    "bugs_worker_metrics": "bugs worker /metrics",
    "analytics_worker_metrics": "analytics worker /metrics",
    "integrations_worker_metrics": "integrations worker /metrics",
}

# Which component binds which port: only those of the components being started are checked.
_PORTS_OF: dict[str, tuple[str, ...]] = {
    "postgres": ("postgres",),
    "nats": ("nats", "nats_monitor"),
    "services": (*SERVICES, *(f"{s}_worker_metrics" for s in SERVICES)),
    "gateway": ("gateway", "envoy_admin", "gateway_usage"),
}


@dataclass(frozen=True)
class Ports:
    """TCP ports on 127.0.0.1, one per listener."""

    gateway: int = 8080
    envoy_admin: int = 9901
    auth: int = 8101
    bugs: int = 8102
    analytics: int = 8103
    integrations: int = 8104
    postgres: int = 55432
    nats: int = 4222
    nats_monitor: int = 8222
    gateway_usage: int = 9902
    # Each worker's /metrics and /healthz (WORKER_METRICS_PORT of that worker).
    auth_worker_metrics: int = 9111
    bugs_worker_metrics: int = 9112
    analytics_worker_metrics: int = 9113
    integrations_worker_metrics: int = 9114

    @staticmethod
    def env_var(name: str) -> str:
        """The environment variable that sets port `name`, e.g. BUGNET_NATS_MONITOR_PORT."""
        return f"BUGNET_{name.upper()}_PORT"

    @staticmethod
    def cli_flag(name: str) -> str:
        """The command-line flag that sets port `name`, e.g. --nats-monitor-port."""
        return f"--{name.replace('_', '-')}-port"

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every port's field name."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: int | None) -> Ports:
        """Defaults, then `BUGNET_<NAME>_PORT` variables, then explicit (non-None) overrides."""
        env = os.environ if env is None else env
        values: dict[str, int] = {}
        for name in cls.names():
            raw = env.get(cls.env_var(name))
            if raw:
                values[name] = _parse_port(raw, cls.env_var(name))
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name, port in values.items():
            _parse_port(str(port), name)
        return replace(cls(), **values)

    @classmethod
    def free(cls) -> Ports:
        """A set of ports that were all free a moment ago, for stacks started by tests."""
        chosen: set[int] = set()
        values: dict[str, int] = {}
        for name in cls.names():
            port = free_port()
            while port in chosen:
                port = free_port()
            chosen.add(port)
            values[name] = port
        return cls(**values)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.names()}

    def service(self, name: str) -> int:
        """The api port of service `name`."""
        if name not in SERVICES:
            raise KeyError(name)
        port: int = getattr(self, name)
        return port

    def worker_metrics(self, name: str) -> int:
        """The /metrics + /healthz port of service `name`'s worker."""
        if name not in SERVICES:
            raise KeyError(name)
        port: int = getattr(self, f"{name}_worker_metrics")
        return port


def _parse_port(raw: str, where: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise StackError(f"{where}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise StackError(f"{where}={raw!r} is not a port number (1-65535)")
    return port


def normalize_components(components: tuple[str, ...] | list[str] | set[str]) -> tuple[str, ...]:
    """Components in start order; refuses unknown ones and missing prerequisites."""
    wanted = set(components)
    unknown = wanted - set(COMPONENTS)
    if unknown:
        raise StackError(f"unknown component(s) {sorted(unknown)}; choose from {list(COMPONENTS)}")
    for component in wanted:
        missing = [r for r in _REQUIRES[component] if r not in wanted]
        if missing:
            raise StackError(f"component {component!r} needs {missing} as well")
    return tuple(c for c in COMPONENTS if c in wanted)


def ports_of(components: tuple[str, ...]) -> tuple[str, ...]:
    """Names of the ports the given components bind."""
    return tuple(name for c in components for name in _PORTS_OF[c])


def find_repo_root(start: Path | None = None) -> Path:
    """The workspace root: `BUGNET_REPO_ROOT`, else the nearest parent holding uv.lock and services/."""
    env_root = os.environ.get("BUGNET_REPO_ROOT")
    if env_root:
        return Path(env_root).resolve()
    candidates = [Path(start or Path.cwd()).resolve(), Path(__file__).resolve()]
    for base in candidates:
        for directory in (base, *base.parents):
            if (directory / "uv.lock").is_file() and (directory / "services").is_dir():
                return directory
    return Path.cwd().resolve()


def default_data_dir(repo_root: Path) -> Path:
    """`BUGNET_DATA_DIR`, else `.bugnet/` in the repo root."""
    env_dir = os.environ.get("BUGNET_DATA_DIR")
    return Path(env_dir).resolve() if env_dir else repo_root / ".bugnet"


def venv_bin() -> Path:
    """The bin directory of the environment this launcher runs in (the repo's .venv)."""
    return Path(sys.executable).parent
