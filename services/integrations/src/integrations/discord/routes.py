"""HTTP routes of the Discord integration (spec §7)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import errors, openapi, web

from .. import context as ctx
from ..delivery.prepare import Undeliverable
from ..webhooks.service import DeliveryOut, delivery_out
from . import service
from .schemas import DiscordIn, DiscordPatch

bp = Blueprint("discord", __name__, url_prefix="/api")
MANAGE = "integrations.manage"
PATH = "/projects/<slug>/integrations/discord"
NEEDS = "Needs the integrations.manage permission."


@bp.get(PATH)
@openapi.operation("Get the Discord integration", tag="Integrations",
                   response=service.DiscordOut,
                   description="The webhook URL is shown masked. 404 when Discord is not "
                               "configured. " + NEEDS)
def get_discord(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    return web.ok(service.discord_out(service.get_integration(ctx.session(), access.project)))


@bp.route(PATH, methods=["POST", "PUT"])
@openapi.operation(
    "Configure Discord", tag="Integrations", body=DiscordIn, response=service.DiscordOut,
    status=201, alt_statuses=(200,),
    description="Sets the project's Discord channel webhook, replacing any: 201 when it is new, "
                "200 when it replaced one. Without `events`, new bugs, resolutions, "
                "regressions and alerts are posted. " + NEEDS)
def configure_discord(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    data = web.json_body(DiscordIn)
    integration, created = service.configure(session=ctx.session(), project=access.project,
                                             data=data, settings=ctx.settings())
    return web.ok(service.discord_out(integration), 201 if created else 200)


@bp.patch(PATH)
@openapi.operation("Update the Discord integration", tag="Integrations", body=DiscordPatch,
                   response=service.DiscordOut,
                   description="Only the fields sent change. " + NEEDS)
def update_discord(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    data = web.json_body(DiscordPatch)
    integration = service.update(session=ctx.session(), project=access.project, data=data,
                                 settings=ctx.settings())
    return web.ok(service.discord_out(integration))


@bp.delete(PATH)
@openapi.operation("Remove the Discord integration", tag="Integrations",
                   response=service.DiscordOut,
                   description="Answers the removed integration. " + NEEDS)
def delete_discord(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    return web.ok(service.discord_out(service.remove(session=ctx.session(),
                                                     project=access.project)))


@bp.post(PATH + "/test")
@openapi.operation(
    "Send a Discord test message", tag="Integrations", response=DeliveryOut, errors=(409,),
    description="Posts a test message now and answers the delivery; the body may be empty. "
                "409 when the channel cannot be delivered to. " + NEEDS)
def test_discord(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    web.raw_json(allow_empty=True)
    try:
        delivery = service.test_message(session=ctx.session(), project=access.project,
                                        settings=ctx.settings())
    except Undeliverable as exc:
        raise errors.Conflict(f"Cannot send a test: {exc}") from None
    return web.ok(delivery_out(delivery))
