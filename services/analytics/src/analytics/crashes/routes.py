"""HTTP route of the crashes area (spec §6): `GET /projects/{slug}/analytics/crashes`."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import openapi, web

from .. import context as ctx
from . import health, models, service

bp = Blueprint("crashes", __name__, url_prefix="/api")
TABLES = (models.CrashDaily, models.CrashWeekly, models.CrashPlayer, models.CrashPlayerDay)  # on Base.metadata


@bp.get("/projects/<slug>/analytics/crashes")
@openapi.operation(
    "Get crash health", tag="Analytics", query=health.TopCrashesQuery,
    response=service.CrashSummaryOut,
    description="Crash-free sessions and users, the daily trend, the per-platform split and "
                "the top crash groups over `days` (UTC). Rates are percent with two "
                "decimals. Needs `analytics.view`.")
def crashes(slug: str) -> ResponseReturnValue:
    project = ctx.project(slug, "analytics.view")
    args = web.query_args(health.TopCrashesQuery)
    return web.ok(service.crash_summary(session=ctx.session(), project=project,
                                        win=health.window_of(args), top=args.top))
