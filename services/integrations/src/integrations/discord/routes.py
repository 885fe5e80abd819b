"""HTTP routes of the Discord integration (spec §7)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import errors, web

from .. import context as ctx
from ..delivery.prepare import Undeliverable
from ..webhooks.service import delivery_out
from . import service
from .schemas import DiscordIn, DiscordPatch

bp = Blueprint("discord", __name__, url_prefix="/api")
MANAGE = "integrations.manage"
PATH = "/projects/<slug>/integrations/discord"


@bp.get(PATH)
def get_discord(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    return web.ok(service.discord_out(service.get_integration(ctx.session(), access.project)))


@bp.route(PATH, methods=["POST", "PUT"])
def configure_discord(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    data = web.json_body(DiscordIn)
    integration, created = service.configure(session=ctx.session(), project=access.project,
                                             data=data, settings=ctx.settings())
    return web.ok(service.discord_out(integration), 201 if created else 200)


@bp.patch(PATH)
def update_discord(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    data = web.json_body(DiscordPatch)
    integration = service.update(session=ctx.session(), project=access.project, data=data,
                                 settings=ctx.settings())
    return web.ok(service.discord_out(integration))


@bp.delete(PATH)
def delete_discord(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    return web.ok(service.discord_out(service.remove(session=ctx.session(),
                                                     project=access.project)))


@bp.post(PATH + "/test")
def test_discord(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    web.raw_json(allow_empty=True)
    try:
        delivery = service.test_message(session=ctx.session(), project=access.project,
                                        settings=ctx.settings())
    except Undeliverable as exc:
        raise errors.Conflict(f"Cannot send a test: {exc}") from None
    return web.ok(delivery_out(delivery))
