"""HTTP routes of the releases area (spec §6): release health per game version."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import web

from .. import context as ctx
from ..crashes import health
from . import service

bp = Blueprint("releases", __name__, url_prefix="/api")


@bp.get("/projects/<slug>/analytics/releases")
def list_releases(slug: str) -> ResponseReturnValue:
    project = ctx.project(slug, "analytics.view")
    win = health.window_from_request()
    page = web.page_from_request()
    items, total = service.list_releases(session=ctx.session(), project=project, win=win,
                                         page=page)
    return web.paginated(items, page, total)


@bp.get("/projects/<slug>/analytics/releases/<path:version>")
def release(slug: str, version: str) -> ResponseReturnValue:
    project = ctx.project(slug, "analytics.view")
    win = health.window_from_request()
    top = health.int_arg("top", service.TOP_CRASHES, 1, 100)
    return web.ok(service.release_detail(session=ctx.session(), project=project,
                                         version=version, win=win, top=top))
