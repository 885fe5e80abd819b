"""The analytics api (spec §6): SDK ingestion (sessions, perf snapshots, satisfaction) and the
studio's analytics queries.

Each area is a package whose `routes` module has a blueprint `bp`; AREAS lists them, one line
each, so areas are added without touching one another's lines.
"""

from __future__ import annotations

import importlib

from flask import Blueprint, Flask

from bugnet_common.runtime import build_runtime
from bugnet_common.web import create_service_app

from .fastpath import Handler, SdkFastPath
from .models import BUS
from .settings import AnalyticsSettings

AREAS: tuple[str, ...] = (
    ".sessions.routes",
    ".perf.routes",
    ".satisfaction.routes",
    ".usage.routes",
    ".dashboard.routes",
    ".crashes.routes",
    ".releases.routes",
    ".performance.routes",
    ".regressions.routes",
    ".satisfaction_summary.routes",
)


def blueprints() -> list[Blueprint]:
    found = []
    for name in AREAS:
        bp = importlib.import_module(name, __package__).bp
        assert isinstance(bp, Blueprint), name
        found.append(bp)
    return found


def create_app(settings: AnalyticsSettings | None = None) -> Flask:
    settings = settings or AnalyticsSettings()
    runtime = build_runtime(settings, BUS)
    app = create_service_app("analytics", settings, blueprints=blueprints(),
                             readiness=runtime.readiness())
    runtime.init_app(app)
    if settings.sdk_fast_path:
        app.wsgi_app = SdkFastPath(app, fast_routes())  # type: ignore[method-assign]
    return app


def fast_routes() -> dict[str, Handler]:
    """The SDK endpoints the fast path answers (each area's FAST_ROUTES)."""
    routes: dict[str, Handler] = {}
    for name in AREAS:
        routes.update(getattr(importlib.import_module(name, __package__), "FAST_ROUTES", {}))
    return routes
