"""The integrations api (spec §7).

Each area registers one blueprint: add it to BLUEPRINTS (one line) and it is served.
"""

from __future__ import annotations

import logging

from flask import Flask

from bugnet_common.runtime import build_runtime
from bugnet_common.web import create_service_app

from .alerts.routes import bp as alerts_bp
from .discord.routes import bp as discord_bp
from .git.routes import bp as git_bp
from .models import BUS
from .notifications.routes import bp as notifications_bp
from .settings import IntegrationsSettings
from .steam.routes import bp as steam_bp
from .webhooks.routes import bp as webhooks_bp

BLUEPRINTS = (
    webhooks_bp,
    discord_bp,
    git_bp,
    steam_bp,
    alerts_bp,
    notifications_bp,
)


def create_app(settings: IntegrationsSettings | None = None) -> Flask:
    settings = settings or IntegrationsSettings()
    # httpx logs every request URL at INFO; Discord webhook URLs carry their token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    runtime = build_runtime(settings, BUS)
    app = create_service_app("integrations", settings, blueprints=BLUEPRINTS,
                             readiness=runtime.readiness())
    runtime.init_app(app)
    return app
