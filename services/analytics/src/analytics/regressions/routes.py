"""HTTP routes of the regressions area (spec §6)."""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from bugnet_common import web

from .. import context as ctx
from . import service
from .schemas import RegressionPatch

bp = Blueprint("regressions", __name__, url_prefix="/api")


@bp.get("/projects/<slug>/regressions")
def list_regressions(slug: str) -> ResponseReturnValue:
    project = ctx.project(slug, "analytics.view")
    status = service.parse_status(request.args.get("status"))
    page = web.page_from_request()
    rows, total = service.list_regressions(session=ctx.session(), project=project,
                                           status=status, page=page)
    return web.paginated([service.regression_out(r) for r in rows], page, total)


@bp.post("/projects/<slug>/regressions/detect")
def detect(slug: str) -> ResponseReturnValue:
    project = ctx.project(slug, "analytics.view")
    web.raw_json(allow_empty=True)  # no body expected; a malformed one is still a 400
    new = service.detect(session=ctx.session(), project=project)
    return web.ok([service.regression_out(r) for r in new])


@bp.route("/projects/<slug>/regressions/<regression_id>", methods=["PATCH", "PUT"])
def update_regression(slug: str, regression_id: str) -> ResponseReturnValue:
    project = ctx.project(slug, "bugs.edit")
    data = web.json_body(RegressionPatch)
    regression = service.set_status(session=ctx.session(), project=project,
                                    regression_id=regression_id, status=data.status)
    return web.ok(service.regression_out(regression))
