"""Session-wide real servers: one PostgreSQL and one NATS for the whole run (testcontainers
when a Docker engine answers, else the PyPI wheels the dev stack uses)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from stack_fixtures import api, new_client, stack  # noqa: F401  (fixtures, shared by e2e and security)

from servers import NatsInfo, PostgresInfo, nats_server, postgres_server

# Every success response a declared route gives, in-process or in a stack the tests start,
# is checked against the schema the OpenAPI document publishes (bugnet_common.openapi).
os.environ.setdefault("BUGNET_CHECK_RESPONSES", "1")


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresInfo]:
    with postgres_server() as info:
        yield info


@pytest.fixture(scope="session")
def nats(pg: PostgresInfo) -> Iterator[NatsInfo]:
    with nats_server() as info:
        yield info
