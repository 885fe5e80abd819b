"""What an api process holds for its lifetime: settings, database, token verifier, bus thread.

`create_app` builds one per app (nothing at import time), so tests can build several apps with
different settings in one process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask
from joserfc.jwk import KeySet

from . import auth, openapi
from .auth import JwksCache, JwtVerifier, Principal, current_principal
from .bus.client import BusThread
from .bus.tables import BusTables
from .db import Database, request_session
from .errors import ServiceUnavailable
from .health import Check
from .settings import ServiceSettings

REVOCATION_SYNC_WAIT_SECONDS = 3.0


@dataclass
class Runtime:
    settings: ServiceSettings
    db: Database
    tables: BusTables
    verifier: JwtVerifier
    bus: BusThread | None = None
    extra_checks: list[Check] = field(default_factory=list)

    def readiness(self) -> list[Check]:
        checks: list[Check] = [("database", self.db.ping)]
        if self.bus is not None:
            checks.append(("nats", self._bus_check))
        return checks + self.extra_checks

    def _bus_check(self) -> None:
        if self.bus is None or not self.bus.connected:
            raise ConnectionError("NATS not connected")

    def init_app(self, app: Flask) -> None:
        app.extensions["bugnet.runtime"] = self
        self.db.init_app(app)
        # The one-off costs of the first requests, paid before the worker serves any.
        auth.warm_up()
        openapi.warm_up()

    def close(self) -> None:
        """Stop the bus thread and close pooled connections (tests; gunicorn just exits)."""
        if self.bus is not None:
            self.bus.stop()
        self.db.engine.dispose()

    def session(self, app: Flask):  # type: ignore[no-untyped-def]
        return request_session(app)

    def user(self, *, optional: bool = False) -> Principal | None:
        return current_principal(self.verifier, optional=optional)


def _kv_revocation_check(bus: BusThread) -> Callable[[str], bool]:
    def is_revoked(session_id: str) -> bool:
        if not bus.revocations.synced.wait(REVOCATION_SYNC_WAIT_SECONDS):
            # Until the revocation list is loaded a signed-out token could pass: refuse instead.
            raise ServiceUnavailable("Session state is not available yet; retry shortly")
        return session_id in bus.revocations

    return is_revoked


def database_for(settings: ServiceSettings) -> Database:
    return Database(settings.database_url.get_secret_value(), pool_size=settings.db_pool_size)


def build_runtime(settings: ServiceSettings, tables: BusTables, *,
                  keys: Callable[[str | None], KeySet] | None = None,
                  is_revoked: Callable[[str], bool] | None = None,
                  db: Database | None = None) -> Runtime:
    """Wire a service's runtime. Services other than auth verify with the JWKS over HTTP and
    the KV revocation mirror; auth passes its own key source and session table."""
    if db is None:
        db = database_for(settings)
    bus = None
    if settings.bus_in_api:
        bus = BusThread(settings.nats_url, f"{settings.service_name}-api",
                        revocation_bucket=None if is_revoked else settings.revocation_bucket).start()
    if keys is None:
        keys = JwksCache(settings.jwks_url).keys_for
    if is_revoked is None and bus is not None:
        is_revoked = _kv_revocation_check(bus)
    verifier = JwtVerifier(issuer=settings.jwt_issuer, audience=settings.jwt_audience, keys=keys,
                           is_revoked=is_revoked, leeway=settings.jwt_leeway_seconds)
    return Runtime(settings=settings, db=db, tables=tables, verifier=verifier, bus=bus)


def runtime_of(app: Flask) -> Runtime:
    return app.extensions["bugnet.runtime"]  # type: ignore[no-any-return]
