"""HTTP route of the satisfaction summary (spec §6): `GET …/analytics/satisfaction`."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import web

from .. import context as ctx
from ..crashes import health
from . import service

bp = Blueprint("satisfaction_summary", __name__, url_prefix="/api")


@bp.get("/projects/<slug>/analytics/satisfaction")
def satisfaction(slug: str) -> ResponseReturnValue:
    project = ctx.project(slug, "analytics.view")
    win = health.window_from_request()
    return web.ok(service.satisfaction(session=ctx.session(), project=project, win=win))
