"""The analytics api against a real PostgreSQL and NATS, tokens verified over a real JWKS.

Fixtures:
- `analytics_settings`, `analytics_app` (session-wide; database `analytics_it` migrated to
  heads), `analytics_db` (the app's Database, every table emptied before the test),
  `client` (Flask test client on that clean database);
- `feed` (a `support.Feeder`): builds the read models by applying the bugs service's event
  payloads through the real handlers: `feed.project()`, `feed.member(...)`, `feed.user()`,
  `feed.bug(project, status="resolved", ...)`, `feed.rotate_key(project)`, ...
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from integration.analytics.support import Feeder

from analytics.app import create_app
from analytics.migrate import MIGRATIONS
from analytics.settings import AnalyticsSettings
from bugnet_common.db import Database, migrate
from bugnet_common.runtime import runtime_of
from bugnet_common.testing import TokenIssuer
from servers import NatsInfo, PostgresInfo, scratch_dir


@pytest.fixture(scope="session")
def issuer() -> Iterator[TokenIssuer]:
    issuer = TokenIssuer()
    issuer.start()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="session")
def analytics_settings(pg: PostgresInfo, nats: NatsInfo,
                       issuer: TokenIssuer) -> Iterator[AnalyticsSettings]:
    url = pg.create_database("analytics_it")
    migrate(script_location=MIGRATIONS, url=url)
    with scratch_dir("bugnet-analytics-it-") as data_dir:
        yield AnalyticsSettings(database_url=url, nats_url=nats.url, env="test",  # type: ignore[arg-type]
                                jwks_url=issuer.jwks_url,
                                revocation_bucket=f"revoked_{uuid.uuid4().hex[:8]}",
                                data_dir=data_dir)


@pytest.fixture(scope="session")
def analytics_app(analytics_settings: AnalyticsSettings) -> Iterator[Flask]:
    app = create_app(analytics_settings)
    app.testing = True
    yield app
    runtime_of(app).close()


def clean_tables(db: Database) -> None:
    """Empty every table of the analytics database, other areas' tables included."""
    with db.engine.begin() as conn:
        names = [r[0] for r in conn.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename <> 'alembic_version'")]
        if names:
            conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{n}"' for n in names)
                                 + " RESTART IDENTITY CASCADE")


@pytest.fixture()
def analytics_db(analytics_app: Flask) -> Database:
    db: Database = analytics_app.extensions["bugnet.db"]
    clean_tables(db)
    return db


@pytest.fixture()
def client(analytics_app: Flask, analytics_db: Database) -> FlaskClient:
    return analytics_app.test_client()


@pytest.fixture()
def feed(analytics_db: Database, issuer: TokenIssuer) -> Feeder:
    return Feeder(db=analytics_db, issuer=issuer)
