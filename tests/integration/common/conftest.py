"""Fixtures of the libs/common integration tests: a module's own database holding its
`METADATA` (the bus tables and whatever the module adds) with the outbox's NOTIFY trigger."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from bugnet_common.bus.tables import OUTBOX_NOTIFY_DDL
from bugnet_common.db import Database
from bugnet_common.testing import truncate_all
from servers import PostgresInfo


@pytest.fixture(scope="module")
def db(pg: PostgresInfo, request: pytest.FixtureRequest) -> Iterator[Database]:
    """A database named after the test module, with the module's `METADATA` created."""
    metadata: sa.MetaData = request.module.METADATA
    database = Database(pg.create_database(request.module.__name__.rpartition(".")[2]))
    metadata.create_all(database.engine)
    with database.engine.begin() as conn:
        for statement in OUTBOX_NOTIFY_DDL:
            conn.execute(sa.text(statement))
    yield database
    database.engine.dispose()


@pytest.fixture()
def clean(db: Database, request: pytest.FixtureRequest) -> Database:
    """`db` with every table of the module's `METADATA` emptied."""
    truncate_all(db.engine, request.module.METADATA)
    return db
