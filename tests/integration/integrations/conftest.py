"""The integrations api and worker against a real PostgreSQL and NATS, with tokens verified over
a real JWKS.

Fixtures:
- `client`: Flask test client of the app, on a clean database (every table truncated).
- `integrations_settings` / `integrations_app` / `integrations_db`: the session's settings,
  app and Database. Loopback (127.0.0.0/8) is allowlisted and http allowed, so local
  receivers can be targets; `strict_targets` turns the allowlist off for one test.
- `user()`, `project(owner)`, `member(project, user, role)`: rows of the read models, made by
  applying the same event payloads the worker's handlers consume (user_registered,
  project_created + member_added, member_added).
- `worker`: the integrations worker (consumers + delivery engine) running in a thread;
  `worker_factory(**setting overrides)` for a worker with other settings.
- `receiver()`: a local HTTP server recording what it receives (receivers.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from integration.integrations.receivers import Receiver
from integration.integrations.support import (
    ROLE_PERMISSIONS,
    Project,
    User,
    apply,
    event,
)

from bugnet_common.bus import subjects
from bugnet_common.bus.worker import Worker
from bugnet_common.db import Database, migrate
from bugnet_common.runtime import runtime_of
from bugnet_common.testing import TokenIssuer, truncate_all, worker_thread
from integrations.app import create_app
from integrations.migrate import MIGRATIONS
from integrations.models import Base
from integrations.settings import IntegrationsSettings
from integrations.worker import build_worker
from servers import NatsInfo, PostgresInfo, scratch_dir


@pytest.fixture(scope="session")
def issuer() -> Iterator[TokenIssuer]:
    issuer = TokenIssuer()
    issuer.start()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="session")
def integrations_settings(pg: PostgresInfo, nats: NatsInfo,
                          issuer: TokenIssuer) -> Iterator[IntegrationsSettings]:
    url = pg.create_database("integrations_it")
    migrate(script_location=MIGRATIONS, url=url)
    with scratch_dir("bugnet-integrations-it-") as data_dir:
        yield IntegrationsSettings(
            database_url=url, nats_url=nats.url, env="test",  # type: ignore[arg-type]
            jwks_url=issuer.jwks_url, revocation_bucket=f"revoked_{uuid.uuid4().hex[:8]}",
            data_dir=data_dir, allowed_targets=["127.0.0.0/8"], allow_http=True,
            delivery_backoff_base_seconds=0.2, delivery_backoff_max_seconds=2.0,
            delivery_poll_seconds=0.05, delivery_timeout_seconds=5.0,
            delivery_lease_seconds=10.0, public_base_url="https://bugnet.test")


@pytest.fixture(scope="session")
def integrations_app(integrations_settings: IntegrationsSettings) -> Iterator[Flask]:
    app = create_app(integrations_settings)
    app.testing = True
    yield app
    runtime_of(app).close()


@pytest.fixture()
def integrations_db(integrations_app: Flask) -> Database:
    db: Database = integrations_app.extensions["bugnet.db"]
    # Only tables the migrations created: an area whose migration is not written yet must not
    # break the others' tests.
    existing = set(sa.inspect(db.engine).get_table_names())
    metadata = sa.MetaData()
    for table in Base.metadata.sorted_tables:
        if table.name in existing:
            table.to_metadata(metadata)
    truncate_all(db.engine, metadata)
    return db


@pytest.fixture()
def client(integrations_app: Flask, integrations_db: Database) -> FlaskClient:
    return integrations_app.test_client()


@pytest.fixture()
def strict_targets(integrations_settings: IntegrationsSettings) -> Iterator[IntegrationsSettings]:
    """No allowlist for this test: loopback and private targets are refused."""
    saved = list(integrations_settings.allowed_targets)
    integrations_settings.allowed_targets = []
    try:
        yield integrations_settings
    finally:
        integrations_settings.allowed_targets = saved


@pytest.fixture()
def user(integrations_db: Database, issuer: TokenIssuer) -> Callable[..., User]:
    """A signed-in user the users read model knows (as after `user_registered`)."""

    def make(name: str = "Player", email: str | None = None) -> User:
        user_id = str(uuid.uuid4())
        email = email or f"{name.lower().replace(' ', '-')}-{user_id[:6]}@example.com"
        apply(integrations_db, event(subjects.USER_REGISTERED, source="auth", user_id=user_id,
                                     email=email, display_name=name))
        return User(id=user_id, email=email, display_name=name,
                    token=issuer.token(user_id, email))

    return make


@pytest.fixture()
def member(integrations_db: Database) -> Callable[..., None]:
    """Make `user` a member of `project` (as after `member_added`); `permissions` defaults to
    the role's defaults."""

    def make(project: Project, user: User, role: str = "member",
             permissions: list[str] | None = None) -> None:
        perms = sorted(ROLE_PERMISSIONS[role] if permissions is None else permissions)
        apply(integrations_db, event(subjects.MEMBER_ADDED, project_id=project.id,
                                     user_id=user.id, role=role, permissions=perms))

    return make


@pytest.fixture()
def project(integrations_db: Database, member: Callable[..., None]) -> Callable[..., Project]:
    """A project owned by `owner` (as after `project_created` + `member_added`)."""

    def make(owner: User, name: str = "Space Game", slug: str | None = None) -> Project:
        project_id = str(uuid.uuid4())
        slug = slug or f"space-{project_id[:8]}"
        apply(integrations_db, event(subjects.PROJECT_CREATED, project_id=project_id, slug=slug,
                                     name=name, api_key_hash="0" * 64, owner_id=owner.id,
                                     settings={}, changes=[]))
        p = Project(id=project_id, slug=slug, name=name)
        member(p, owner, "owner")
        return p

    return make


@pytest.fixture()
def worker_factory(integrations_settings: IntegrationsSettings,
                   integrations_db: Database) -> Iterator[Callable[..., Worker]]:
    """Start an integrations worker in a thread (stopped after the test); keyword arguments
    override settings of that worker only."""
    stack: list[Any] = []

    def start(**overrides: Any) -> Worker:
        settings = integrations_settings.model_copy(update=overrides)
        w = build_worker(settings, integrations_db)
        cm = worker_thread(w)
        cm.__enter__()
        stack.append(cm)
        return w

    yield start
    while stack:
        stack.pop().__exit__(None, None, None)


@pytest.fixture()
def worker(worker_factory: Callable[..., Worker]) -> Worker:
    return worker_factory()


@pytest.fixture()
def receiver() -> Iterator[Callable[..., Receiver]]:
    """Start local HTTP receivers (stopped after the test)."""
    started: list[Receiver] = []

    def make(**kwargs: Any) -> Receiver:
        r = Receiver(**kwargs).start()
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()
