"""Session-wide real servers: one PostgreSQL and one NATS for the whole run (testcontainers
when a Docker engine answers, else the PyPI wheels the dev stack uses)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from servers import NatsInfo, PostgresInfo, nats_server, postgres_server


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresInfo]:
    with postgres_server() as info:
        yield info


@pytest.fixture(scope="session")
def nats(pg: PostgresInfo) -> Iterator[NatsInfo]:
    with nats_server() as info:
        yield info
