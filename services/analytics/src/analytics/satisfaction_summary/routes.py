"""HTTP route of the satisfaction summary (spec §6): `GET …/analytics/satisfaction`."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import openapi, web

from .. import context as ctx
from ..crashes import health
from . import service

bp = Blueprint("satisfaction_summary", __name__, url_prefix="/api")


@bp.get("/projects/<slug>/analytics/satisfaction")
@openapi.operation(
    "Get player satisfaction", tag="Analytics", query=health.WindowQuery,
    response=service.SatisfactionOut,
    description="Players' ratings of fixed bugs over `days` (UTC): average, count, "
                "distribution 1-5, daily trend and recent comments. Needs `analytics.view`.")
def satisfaction(slug: str) -> ResponseReturnValue:
    project = ctx.project(slug, "analytics.view")
    win = health.window_of(web.query_args(health.WindowQuery))
    return web.ok(service.satisfaction(session=ctx.session(), project=project, win=win))
