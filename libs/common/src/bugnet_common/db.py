"""Database helpers: one engine per app, one session per request, one registry per service.

Each service defines its tables on a SQLModel base with its own registry, so that two
services' models can be imported into one process (tests) without their metadata colliding.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from flask import Flask, g
from sqlalchemy import Engine, MetaData, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from .settings import ServiceSettings

log = logging.getLogger(__name__)


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                         pool_recycle=1800)


class Database:
    """An engine and the session factory that goes with it."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.engine = make_engine(url, pool_size=pool_size)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self.session() as session, session.begin():
            yield session

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def init_app(self, app: Flask) -> None:
        app.extensions["bugnet.db"] = self

        @app.teardown_appcontext
        def _close(_exc: BaseException | None) -> None:
            session = g.pop("db_session", None)
            if session is not None:
                try:
                    session.close()
                except (DBAPIError, psycopg.Error) as exc:
                    # The rollback of a connection the server dropped (PostgreSQL restarting):
                    # the pool already discarded it; raising here would turn the response the
                    # error handlers made into a bare 500 from the WSGI server.
                    log.warning("closing the request's session failed: %s",
                                str(exc).splitlines()[0][:300])


def request_session(app: Flask) -> Session:
    """The request's session; the use case commits it, teardown closes it."""
    session = g.get("db_session")
    if session is None:
        session = app.extensions["bugnet.db"].session()
        g.db_session = session
    return session


def migrate(*, script_location: Path, url: str, revision: str = "heads") -> None:
    """Upgrade the service's database to `revision` with alembic. The default, `heads`, applies
    every branch: a service's areas may each branch their migrations from a common revision."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, revision)


def migrate_service(settings: ServiceSettings, package_file: str) -> None:
    """`python -m <svc>.migrate`: upgrade to heads from `services/<svc>/migrations`."""
    migrate(script_location=migrations_dir(package_file),
            url=settings.database_url.get_secret_value())


def migrations_dir(package_file: str) -> Path:
    """services/<svc>/migrations, from any module file of the service package."""
    return Path(package_file).resolve().parents[2] / "migrations"


def run_migrations_online(metadata: MetaData) -> None:
    """The body of every service's alembic env.py."""
    from alembic import context
    from sqlalchemy import pool

    cfg = context.config
    connectable = create_engine(cfg.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
