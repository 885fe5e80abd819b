"""HTTP route of the crashes area (spec §6): `GET /projects/{slug}/analytics/crashes`."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import web

from .. import context as ctx
from . import health, models, service

bp = Blueprint("crashes", __name__, url_prefix="/api")
TABLES = (models.CrashDaily, models.CrashWeekly, models.CrashPlayer, models.CrashPlayerDay)  # on Base.metadata


@bp.get("/projects/<slug>/analytics/crashes")
def crashes(slug: str) -> ResponseReturnValue:
    project = ctx.project(slug, "analytics.view")
    win = health.window_from_request()
    top = health.int_arg("top", service.TOP_SIGNATURES, 1, 100)
    return web.ok(service.crash_summary(session=ctx.session(), project=project, win=win,
                                        top=top))
