from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from flask import Flask

from auth.app import create_app
from auth.migrate import MIGRATIONS
from auth.models import BUS, Base
from auth.settings import AuthSettings
from bugnet_common.bus.events import ExportRequest
from bugnet_common.bus.worker import Worker
from bugnet_common.db import Database, migrate
from bugnet_common.runtime import runtime_of
from bugnet_common.testing import truncate_all, worker_thread
from servers import NatsInfo, PostgresInfo


@pytest.fixture(scope="session")
def auth_db_url(pg: PostgresInfo) -> str:
    url = pg.create_database("auth_it")
    migrate(script_location=MIGRATIONS, url=url)
    return url


@pytest.fixture(scope="session")
def auth_settings(auth_db_url: str, nats: NatsInfo) -> AuthSettings:
    return AuthSettings(database_url=auth_db_url, nats_url=nats.url, env="test",  # type: ignore[arg-type]
                        export_timeout_seconds=1.0, revocation_bucket="revoked_sessions_it")


@pytest.fixture(scope="session")
def auth_app(auth_settings: AuthSettings) -> Iterator[Flask]:
    app = create_app(auth_settings)
    app.testing = True
    yield app
    runtime_of(app).close()


@pytest.fixture()
def auth_db(auth_app: Flask) -> Iterator[Database]:
    db: Database = auth_app.extensions["bugnet.db"]
    truncate_all(db.engine, Base.metadata)
    yield db


@pytest.fixture()
def client(auth_app: Flask, auth_db: Database):  # type: ignore[no-untyped-def]
    return auth_app.test_client()


@pytest.fixture()
def export_responders(nats: NatsInfo, auth_db: Database) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Start real workers on the real bus that answer the export request as the named
    services would; call the yielded function with {service: part}."""
    with ExitStack() as stack:
        def start(parts: dict[str, Any]) -> None:
            for name, part in parts.items():
                def answer(_req: ExportRequest, part: dict[str, Any] = part) -> dict[str, Any]:
                    return part

                worker = Worker(service=name, nats_url=nats.url, db=auth_db, tables=BUS,
                                export=answer, relay=False)
                stack.enter_context(worker_thread(worker))

        yield start
