"""HTTP routes of the performance area (spec §6): a project's performance by version and
platform, and one bug's snapshots."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import openapi, web

from .. import context as ctx
from ..crashes import health
from . import service

bp = Blueprint("performance", __name__, url_prefix="/api")


@bp.get("/projects/<slug>/analytics/performance")
@openapi.operation(
    "Get performance by version and platform", tag="Analytics", query=health.WindowQuery,
    response=service.PerformanceOut,
    description="Average, p50 and p95 (nearest rank) of fps, frame time and memory per "
                "version and platform, and scene load times, over `days` (UTC). Needs "
                "`analytics.view`.")
def performance(slug: str) -> ResponseReturnValue:
    project = ctx.project(slug, "analytics.view")
    win = health.window_of(web.query_args(health.WindowQuery))
    return web.ok(service.performance(session=ctx.session(), project=project, win=win))


@bp.get("/projects/<slug>/bugs/<bug_id>/performance")
@openapi.operation(
    "List a bug's performance snapshots", tag="Analytics",
    response=service.PerfSnapshotOut, paginated=True,
    description="The snapshots the SDK sent with this bug's id, newest first. Needs "
                "`bugs.view`.")
def bug_performance(slug: str, bug_id: str) -> ResponseReturnValue:
    project = ctx.project(slug, "bugs.view")
    page = web.page_from_request()
    rows, total = service.bug_snapshots(session=ctx.session(), project=project,
                                        bug_id=bug_id, page=page)
    return web.paginated([service.snapshot_out(s) for s in rows], page, total)
