"""GET /api/projects/{slug}/analytics/api-usage (analytics.view)."""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from analytics import context as ctx
from analytics.usage.service import DEFAULT_DAYS, MAX_DAYS, api_usage
from bugnet_common import errors
from bugnet_common.web import ok

bp = Blueprint("usage", __name__, url_prefix="/api")


def _days() -> int:
    raw = request.args.get("days")
    if raw is None or raw == "":
        return DEFAULT_DAYS
    message = f"must be a whole number from 1 to {MAX_DAYS}"
    try:
        days = int(raw)
    except ValueError:
        raise errors.ValidationFailed(f"Invalid 'days': {message}",
                                      details={"days": message}) from None
    if not 1 <= days <= MAX_DAYS:
        raise errors.ValidationFailed(f"Invalid 'days': {message}", details={"days": message})
    return days


@bp.get("/projects/<slug>/analytics/api-usage")
def get_api_usage(slug: str) -> ResponseReturnValue:
    project = ctx.project(slug, "analytics.view")
    days = _days()
    return ok(api_usage(ctx.session(), project_id=project.id, days=days))
