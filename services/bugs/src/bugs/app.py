"""The bugs api (spec §5 and the SDK endpoints of §8)."""

from __future__ import annotations

from flask import Flask

from bugnet_common.runtime import build_runtime
from bugnet_common.web import create_service_app

from .labels.routes import bp as labels_bp
from .models import BUS
from .projects.routes import bp as projects_bp
from .public.routes import bp as public_bp
from .reports.routes import bp as reports_bp
from .sdk.routes import bp as sdk_bp
from .settings import BugsSettings
from .team.routes import bp as team_bp

BLUEPRINTS = (projects_bp, team_bp, reports_bp, labels_bp, sdk_bp, public_bp)


def create_app(settings: BugsSettings | None = None) -> Flask:
    settings = settings or BugsSettings()
    runtime = build_runtime(settings, BUS)
    app = create_service_app("bugs", settings, blueprints=BLUEPRINTS,
                             readiness=runtime.readiness())
    runtime.init_app(app)
    return app
