"""HTTP routes of the webhooks area (spec §7)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import errors, web

from .. import context as ctx
from ..delivery.prepare import Undeliverable
from . import service
from .schemas import WebhookIn, WebhookPatch

bp = Blueprint("webhooks", __name__, url_prefix="/api")
MANAGE = "integrations.manage"


@bp.get("/projects/<slug>/webhooks")
def list_webhooks(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    page = web.page_from_request()
    rows, total = service.list_webhooks(session=ctx.session(), project=access.project, page=page)
    return web.paginated([service.webhook_out(h) for h in rows], page, total)


@bp.post("/projects/<slug>/webhooks")
def create_webhook(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    data = web.json_body(WebhookIn)
    hook, secret = service.create_webhook(session=ctx.session(), project=access.project,
                                          data=data, actor_id=access.user_id,
                                          settings=ctx.settings())
    return web.created(service.webhook_out(hook, secret=secret))


@bp.get("/projects/<slug>/webhooks/<webhook_id>")
def get_webhook(slug: str, webhook_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    return web.ok(service.webhook_out(
        service.find_webhook(ctx.session(), access.project, webhook_id)))


@bp.route("/projects/<slug>/webhooks/<webhook_id>", methods=["PATCH", "PUT"])
def update_webhook(slug: str, webhook_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    data = web.json_body(WebhookPatch)
    session = ctx.session()
    hook = service.find_webhook(session, access.project, webhook_id)
    hook = service.update_webhook(session=session, hook=hook, data=data, settings=ctx.settings())
    return web.ok(service.webhook_out(hook, secret=data.secret))


@bp.delete("/projects/<slug>/webhooks/<webhook_id>")
def delete_webhook(slug: str, webhook_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    session = ctx.session()
    hook = service.find_webhook(session, access.project, webhook_id)
    out = service.webhook_out(hook)
    service.delete_webhook(session=session, hook=hook)
    return web.ok(out)


@bp.post("/projects/<slug>/webhooks/<webhook_id>/test")
def test_webhook(slug: str, webhook_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    web.raw_json(allow_empty=True)
    session = ctx.session()
    hook = service.find_webhook(session, access.project, webhook_id)
    try:
        delivery = service.ping(session=session, project=access.project, hook=hook,
                                settings=ctx.settings())
    except Undeliverable as exc:
        raise errors.Conflict(f"Cannot send a test: {exc}") from None
    return web.ok(service.delivery_out(delivery))


@bp.get("/projects/<slug>/webhooks/<webhook_id>/deliveries")
def list_deliveries(slug: str, webhook_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    page = web.page_from_request()
    session = ctx.session()
    hook = service.find_webhook(session, access.project, webhook_id)
    rows, total = service.list_deliveries(session=session, hook=hook, page=page)
    return web.paginated([service.delivery_out(d) for d in rows], page, total)


@bp.get("/projects/<slug>/webhooks/<webhook_id>/deliveries/<delivery_id>")
def get_delivery(slug: str, webhook_id: str, delivery_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    session = ctx.session()
    hook = service.find_webhook(session, access.project, webhook_id)
    delivery = service.find_delivery(session, hook, delivery_id)
    out = service.delivery_out(delivery)
    out["attempts_log"] = [service.attempt_out(a) for a in service.attempts_of(session, delivery)]
    out["request_body"] = delivery.body
    return web.ok(out)
