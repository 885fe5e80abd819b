"""HTTP routes of the releases area (spec §6): release health per game version."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import openapi, web

from .. import context as ctx
from ..crashes import health
from . import service

bp = Blueprint("releases", __name__, url_prefix="/api")


@bp.get("/projects/<slug>/analytics/releases")
@openapi.operation(
    "List releases", tag="Analytics", query=health.WindowQuery, response=service.ReleaseOut,
    paginated=True,
    description="Release health per `game_version` with sessions in the window, newest "
                "version first (semantic order). Needs `analytics.view`.")
def list_releases(slug: str) -> ResponseReturnValue:
    project = ctx.project(slug, "analytics.view")
    win = health.window_of(web.query_args(health.WindowQuery))
    page = web.page_from_request()
    items, total = service.list_releases(session=ctx.session(), project=project, win=win,
                                         page=page)
    return web.paginated(items, page, total)


@bp.get("/projects/<slug>/analytics/releases/<path:version>")
@openapi.operation(
    "Get a release", tag="Analytics", query=health.TopCrashesQuery,
    response=service.ReleaseDetailOut,
    description="One version's health over the window, with its daily trend, platform "
                "split, top crashes and the delta to the previous version. 404 for a version "
                "the project never saw. Needs `analytics.view`.")
def release(slug: str, version: str) -> ResponseReturnValue:
    project = ctx.project(slug, "analytics.view")
    args = web.query_args(health.TopCrashesQuery)
    return web.ok(service.release_detail(session=ctx.session(), project=project,
                                         version=version, win=health.window_of(args),
                                         top=args.top))
