"""HTTP routes of the Steam area (spec §7): settings, the review import and the dashboard."""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from bugnet_common import errors, web

from .. import context as ctx
from . import service
from .schemas import SteamIn, SteamPatch

bp = Blueprint("steam", __name__, url_prefix="/api")

MAX_DAYS = 365


@bp.get("/projects/<slug>/integrations/steam")
def get_steam(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "integrations.manage")
    steam = service.get_integration(session=ctx.session(), project=access.project)
    return web.ok(service.integration_out(steam))


@bp.post("/projects/<slug>/integrations/steam")
def create_steam(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "integrations.manage")
    data = web.json_body(SteamIn)
    steam = service.create_integration(session=ctx.session(), project=access.project, data=data,
                                       actor_id=access.user_id, settings=ctx.settings())
    return web.created(service.integration_out(steam))


@bp.route("/projects/<slug>/integrations/steam", methods=["PATCH", "PUT"])
def update_steam(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "integrations.manage")
    data = web.json_body(SteamPatch)
    steam = service.update_integration(session=ctx.session(), project=access.project, data=data,
                                       settings=ctx.settings())
    return web.ok(service.integration_out(steam))


@bp.delete("/projects/<slug>/integrations/steam")
def delete_steam(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "integrations.manage")
    steam = service.delete_integration(session=ctx.session(), project=access.project)
    return web.ok(service.integration_out(steam))


@bp.post("/projects/<slug>/integrations/steam/sync")
def sync_steam(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "integrations.manage")
    result = service.sync(session=ctx.session(), project=access.project, settings=ctx.settings())
    return web.ok(result)


def _days() -> int:
    raw = request.args.get("days")
    if raw is None or raw == "":
        return 30
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise errors.ValidationFailed(f"'days' must be an integer between 1 and {MAX_DAYS}",
                                      details={"days": f"must be between 1 and {MAX_DAYS}"})
    return int(raw)


@bp.get("/projects/<slug>/integrations/steam/dashboard")
def steam_dashboard(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "analytics.view")
    days = _days()
    return web.ok(service.dashboard(session=ctx.session(), project=access.project, days=days))
