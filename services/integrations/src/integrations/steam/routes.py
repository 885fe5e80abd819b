"""HTTP routes of the Steam area (spec §7): settings, the review import and the dashboard."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import openapi, web

from .. import context as ctx
from . import service
from .schemas import DashboardQuery, SteamIn, SteamPatch

bp = Blueprint("steam", __name__, url_prefix="/api")
NEEDS = "Needs the integrations.manage permission."


@bp.get("/projects/<slug>/integrations/steam")
@openapi.operation("Get the Steam integration", tag="Integrations",
                   response=service.SteamIntegrationOut,
                   description="The API key is never returned. 404 when none is configured. "
                               + NEEDS)
def get_steam(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "integrations.manage")
    steam = service.get_integration(session=ctx.session(), project=access.project)
    return web.ok(service.integration_out(steam))


@bp.post("/projects/<slug>/integrations/steam")
@openapi.operation(
    "Configure Steam", tag="Integrations", body=SteamIn, response=service.SteamIntegrationOut,
    status=201, errors=(409,),
    description="Sets the project's Steam app (and optional Web API key, stored encrypted). "
                "409 when one is already configured: change it with PATCH. " + NEEDS)
def create_steam(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "integrations.manage")
    data = web.json_body(SteamIn)
    steam = service.create_integration(session=ctx.session(), project=access.project, data=data,
                                       actor_id=access.user_id, settings=ctx.settings())
    return web.created(service.integration_out(steam))


@bp.route("/projects/<slug>/integrations/steam", methods=["PATCH", "PUT"])
@openapi.operation(
    "Update the Steam integration", tag="Integrations", body=SteamPatch,
    response=service.SteamIntegrationOut,
    description="Only the fields sent change; `api_key: null` removes the key. Changing the "
                "app id drops the previous app's imported reviews. " + NEEDS)
def update_steam(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "integrations.manage")
    data = web.json_body(SteamPatch)
    steam = service.update_integration(session=ctx.session(), project=access.project, data=data,
                                       settings=ctx.settings())
    return web.ok(service.integration_out(steam))


@bp.delete("/projects/<slug>/integrations/steam")
@openapi.operation("Remove the Steam integration", tag="Integrations",
                   response=service.SteamIntegrationOut,
                   description="Answers the removed settings. " + NEEDS)
def delete_steam(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "integrations.manage")
    steam = service.delete_integration(session=ctx.session(), project=access.project)
    return web.ok(service.integration_out(steam))


@bp.post("/projects/<slug>/integrations/steam/sync")
@openapi.operation(
    "Import new Steam reviews", tag="Integrations", response=service.SteamSyncOut,
    errors=(409, 502),
    description="Imports the app's new reviews now and answers the counts; idempotent. A long "
                "history is imported over a few syncs (`complete` says when it is done). 409 "
                "while another sync of the project runs; 502 when Steam fails, and then "
                "nothing is stored. The body may be empty. " + NEEDS)
def sync_steam(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "integrations.manage")
    result = service.sync(session=ctx.session(), project=access.project, settings=ctx.settings())
    return web.ok(result)


@bp.get("/projects/<slug>/integrations/steam/dashboard")
@openapi.operation(
    "Get the Steam reviews dashboard", tag="Integrations", query=DashboardQuery,
    response=service.SteamDashboardOut,
    description="Review counts, positive share (percent), a daily trend, recent negative "
                "reviews and the reviews that mention bugs or crashes. Needs the "
                "analytics.view permission.")
def steam_dashboard(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "analytics.view")
    days = web.query_args(DashboardQuery).days
    return web.ok(service.dashboard(session=ctx.session(), project=access.project, days=days))
