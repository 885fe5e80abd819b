"""HTTP routes of the regressions area (spec §6)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import openapi, web

from .. import context as ctx
from . import service
from .schemas import RegressionOut, RegressionPatch, RegressionsQuery

bp = Blueprint("regressions", __name__, url_prefix="/api")


@bp.get("/projects/<slug>/regressions")
@openapi.operation("List regressions", tag="Regressions", query=RegressionsQuery,
                   response=RegressionOut, paginated=True,
                   description="Newest first. Needs `analytics.view`.")
def list_regressions(slug: str) -> ResponseReturnValue:
    project = ctx.project(slug, "analytics.view")
    status = web.query_args(RegressionsQuery).status
    page = web.page_from_request()
    rows, total = service.list_regressions(session=ctx.session(), project=project,
                                           status=status, page=page)
    return web.paginated([service.regression_out(r) for r in rows], page, total)


@bp.post("/projects/<slug>/regressions/detect")
@openapi.operation(
    "Detect regressions now", tag="Regressions", response=list[RegressionOut],
    description="Runs crash-rate and frame-time detection for the project and returns the "
                "regressions it newly found (the same regression is never reported twice). "
                "Takes no body. Needs `analytics.view`.")
def detect(slug: str) -> ResponseReturnValue:
    project = ctx.project(slug, "analytics.view")
    web.raw_json(allow_empty=True)  # no body expected; a malformed one is still a 400
    new = service.detect(session=ctx.session(), project=project)
    return web.ok([service.regression_out(r) for r in new])


@bp.route("/projects/<slug>/regressions/<regression_id>", methods=["PATCH", "PUT"])
@openapi.operation("Confirm or dismiss a regression", tag="Regressions", body=RegressionPatch,
                   response=RegressionOut,
                   description="A dismissed regression is not raised again. Needs "
                               "`bugs.edit`.")
def update_regression(slug: str, regression_id: str) -> ResponseReturnValue:
    project = ctx.project(slug, "bugs.edit")
    data = web.json_body(RegressionPatch)
    regression = service.set_status(session=ctx.session(), project=project,
                                    regression_id=regression_id, status=data.status)
    return web.ok(service.regression_out(regression))
