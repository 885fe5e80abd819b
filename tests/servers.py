"""Real PostgreSQL and NATS servers for tests, never mocks.

When a Docker engine answers (`docker info` within 3 s) they are testcontainers; otherwise they
are the same PyPI wheels the dev stack runs, started through `bugnet_stack` in a temp directory
on free ports. `BUGNET_TEST_SERVERS=docker|wheels` forces one or the other.

Both context managers stop what they started when they exit; conftest wraps them in
session-scoped fixtures.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
from psycopg import sql

from bugnet_stack import Ports, Stack, free_port
from bugnet_stack.postgres import sqlalchemy_url

__all__ = [
    "NatsInfo",
    "PostgresInfo",
    "docker_available",
    "free_port",
    "nats_server",
    "postgres_server",
    "scratch_dir",
]

POSTGRES_IMAGE = "postgres:18"
NATS_IMAGE = "nats:2.10"
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class PostgresInfo:
    """A running PostgreSQL server and its superuser."""

    host: str
    port: int
    superuser_dsn: str  # libpq URL: postgresql://user:password@host:port/postgres

    def create_database(self, name: str) -> str:
        """A fresh, empty database called name (dropped first if it exists); its SQLAlchemy URL."""
        self._check(name)
        with psycopg.connect(self.superuser_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        parts = urlsplit(self.superuser_dsn)
        return sqlalchemy_url(
            user=parts.username or "postgres",
            password=parts.password or "",
            host=self.host,
            port=self.port,
            database=name,
        )

    def drop_database(self, name: str) -> None:
        """Drops database name, disconnecting its sessions."""
        self._check(name)
        with psycopg.connect(self.superuser_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    @staticmethod
    def _check(name: str) -> None:
        if not _DB_NAME.match(name):
            raise ValueError(f"database name {name!r} must match {_DB_NAME.pattern}")


@dataclass(frozen=True)
class NatsInfo:
    """A running NATS server with JetStream."""

    url: str  # nats://host:port
    monitor_url: str  # http://host:port of the monitoring endpoint


@functools.cache
def docker_available() -> bool:
    """True when a Docker engine answers quickly (a docker client alone is not enough)."""
    forced = os.environ.get("BUGNET_TEST_SERVERS", "").strip().lower()
    if forced in ("docker", "wheels"):
        return forced == "docker"
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        result = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=3,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


@contextmanager
def scratch_dir(prefix: str = "bugnet-test-") -> Iterator[Path]:
    """A fresh directory in the system temp dir, removed afterwards.

    Use it (not pytest's tmp_path) as a stack's data directory: as root, PostgreSQL runs as
    `nobody`, which cannot pass through /tmp/pytest-of-root (mode 0700).
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _wheel_stack(components: tuple[str, ...]) -> Iterator[Stack]:
    with scratch_dir(f"bugnet-test-{'-'.join(components)}-") as data_dir:
        stack = Stack(data_dir=data_dir, ports=Ports.free(), components=components, durable=False)
        try:
            stack.up(timeout=90)
            yield stack
        finally:
            stack.down()


@contextmanager
def postgres_server() -> Iterator[PostgresInfo]:
    """A PostgreSQL server for the duration of the block."""
    if docker_available():
        yield from _postgres_container()
        return
    with _wheel_stack(("postgres",)) as stack:
        yield PostgresInfo(
            host="127.0.0.1", port=stack.ports.postgres, superuser_dsn=stack.urls.postgres_dsn
        )


@contextmanager
def nats_server() -> Iterator[NatsInfo]:
    """A NATS server with JetStream for the duration of the block."""
    if docker_available():
        yield from _nats_container()
        return
    with _wheel_stack(("nats",)) as stack:
        yield NatsInfo(url=stack.urls.nats, monitor_url=stack.urls.nats_monitor)


def _postgres_container() -> Iterator[PostgresInfo]:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers before the community split
        from testcontainers.postgres import PostgresContainer

    with PostgresContainer(
        POSTGRES_IMAGE, username="postgres", password="postgres", dbname="postgres", driver=None
    ) as container:
        host = container.get_container_host_ip()
        port = int(container.get_exposed_port(5432))
        yield PostgresInfo(
            host=host,
            port=port,
            superuser_dsn=f"postgresql://postgres:postgres@{host}:{port}/postgres",
        )


def _nats_container() -> Iterator[NatsInfo]:
    from testcontainers.core.container import DockerContainer

    container = (
        DockerContainer(NATS_IMAGE).with_command("-js -m 8222").with_exposed_ports(4222, 8222)
    )
    with container:
        host = container.get_container_host_ip()
        monitor_url = f"http://{host}:{container.get_exposed_port(8222)}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{monitor_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"NATS container did not become healthy at {monitor_url}")
            time.sleep(0.2)
        yield NatsInfo(
            url=f"nats://{host}:{container.get_exposed_port(4222)}", monitor_url=monitor_url
        )
