"""HTTP route of the dashboard area (spec §6): `GET /projects/{slug}/analytics`."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import openapi, web

from .. import context as ctx
from ..crashes import health
from . import service

bp = Blueprint("dashboard", __name__, url_prefix="/api")


@bp.get("/projects/<slug>/analytics")
@openapi.operation(
    "Get the project dashboard", tag="Analytics", query=health.WindowQuery,
    response=service.DashboardOut,
    description="Bugs by status, priority and category, and the daily opened / resolved "
                "trend over `days` (UTC). Needs `analytics.view`.")
def dashboard(slug: str) -> ResponseReturnValue:
    project = ctx.project(slug, "analytics.view")
    win = health.window_of(web.query_args(health.WindowQuery))
    return web.ok(service.dashboard(session=ctx.session(), project=project, win=win))
