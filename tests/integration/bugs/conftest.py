"""The bugs api against a real PostgreSQL and NATS, with tokens verified over a real JWKS.

Fixtures: `client` (Flask test client on a clean database), `user()` (a signed-in user known
to the users read model), `project(owner)` (created through the API; its API key included).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bugnet_common.db import Database, migrate
from bugnet_common.runtime import runtime_of
from bugnet_common.testing import TokenIssuer, truncate_all
from bugs.app import create_app
from bugs.migrate import MIGRATIONS
from bugs.models import Base, UserRef
from bugs.settings import BugsSettings
from servers import NatsInfo, PostgresInfo, scratch_dir


@dataclass(frozen=True)
class User:
    id: str
    email: str
    display_name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="session")
def issuer() -> Iterator[TokenIssuer]:
    issuer = TokenIssuer()
    issuer.start()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="session")
def bugs_settings(pg: PostgresInfo, nats: NatsInfo, issuer: TokenIssuer) -> Iterator[BugsSettings]:
    url = pg.create_database("bugs_it")
    migrate(script_location=MIGRATIONS, url=url)
    with scratch_dir("bugnet-bugs-it-") as data_dir:
        yield BugsSettings(database_url=url, nats_url=nats.url, env="test",  # type: ignore[arg-type]
                           jwks_url=issuer.jwks_url,
                           revocation_bucket=f"revoked_{uuid.uuid4().hex[:8]}",
                           data_dir=data_dir)


@pytest.fixture(scope="session")
def bugs_app(bugs_settings: BugsSettings) -> Iterator[Flask]:
    app = create_app(bugs_settings)
    app.testing = True
    yield app
    runtime_of(app).close()


@pytest.fixture()
def bugs_db(bugs_app: Flask) -> Database:
    db: Database = bugs_app.extensions["bugnet.db"]
    truncate_all(db.engine, Base.metadata)
    return db


@pytest.fixture()
def client(bugs_app: Flask, bugs_db: Database) -> FlaskClient:
    return bugs_app.test_client()


@pytest.fixture()
def user(bugs_db: Database, issuer: TokenIssuer) -> Callable[..., User]:
    """Make a signed-in user the read model already knows (as after `user_registered`)."""

    def make(name: str = "Player", email: str | None = None) -> User:
        user_id = str(uuid.uuid4())
        email = email or f"{name.lower().replace(' ', '-')}-{user_id[:6]}@example.com"
        with bugs_db.begin() as session:
            session.add(UserRef(id=user_id, email=email, display_name=name))
        return User(id=user_id, email=email, display_name=name,
                    token=issuer.token(user_id, email))

    return make


@pytest.fixture()
def project(client: FlaskClient) -> Callable[..., dict[str, Any]]:
    """Create a project through the API as `owner`; returns its JSON (with `api_key`)."""

    def make(owner: User, name: str = "Space Game", **fields: Any) -> dict[str, Any]:
        resp = client.post("/api/projects", json={"name": name, **fields}, headers=owner.headers)
        assert resp.status_code == 201, resp.json
        return resp.json["data"]

    return make
