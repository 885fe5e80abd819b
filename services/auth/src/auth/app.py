"""The auth api (spec §4): accounts, sessions, signing keys and the JWKS."""

from __future__ import annotations

from flask import Flask, current_app

from bugnet_common.db import request_session
from bugnet_common.runtime import build_runtime, database_for
from bugnet_common.web import create_service_app

from . import routes, service
from .models import BUS
from .settings import AuthSettings
from .tokens import KeyStore


def create_app(settings: AuthSettings | None = None) -> Flask:
    settings = settings or AuthSettings()
    db = database_for(settings)
    keys = KeyStore(db, issuer=settings.jwt_issuer, audience=settings.jwt_audience)

    def is_revoked(session_id: str) -> bool:
        # Auth owns the sessions table: it checks the source of truth, not the KV mirror, in
        # the request's own session (one connection per request).
        return service.is_session_revoked(session=request_session(current_app),
                                          session_id=session_id)

    runtime = build_runtime(settings, BUS, db=db, keys=keys.verification_keys,
                            is_revoked=is_revoked)
    app = create_service_app("auth", settings, readiness=runtime.readiness())
    runtime.init_app(app)
    app.extensions["auth.keys"] = keys
    routes.register(app)
    return app
