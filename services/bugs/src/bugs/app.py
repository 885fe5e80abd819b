"""The bugs api: health and readiness until its endpoints land."""

from flask import Flask

from bugnet_common.runtime import build_runtime
from bugnet_common.web import create_service_app

from .models import BUS
from .settings import BugsSettings


def create_app(settings: BugsSettings | None = None) -> Flask:
    settings = settings or BugsSettings()
    runtime = build_runtime(settings, BUS)
    app = create_service_app("bugs", settings, readiness=runtime.readiness())
    runtime.init_app(app)
    return app
