"""GET /api/projects/{slug}/analytics/api-usage (analytics.view)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from analytics import context as ctx
from analytics.usage.service import ApiUsageOut, UsageQuery, api_usage
from bugnet_common import openapi
from bugnet_common.web import ok, query_args

bp = Blueprint("usage", __name__, url_prefix="/api")


@bp.get("/projects/<slug>/analytics/api-usage")
@openapi.operation(
    "Get API usage", tag="Analytics", query=UsageQuery, response=ApiUsageOut,
    description="The project's requests through the gateway per UTC day, by endpoint group "
                "and status class, with rate-limit hits (also the 429s the gateway answered "
                "itself). SDK requests that send their key only in the body cannot be "
                "attributed to a project. Needs `analytics.view`.")
def get_api_usage(slug: str) -> ResponseReturnValue:
    project = ctx.project(slug, "analytics.view")
    days = query_args(UsageQuery).days
    return ok(api_usage(ctx.session(), project_id=project.id, days=days))
