"""HTTP routes of the webhooks area (spec §7)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import errors, openapi, web

from .. import context as ctx
from ..delivery.prepare import Undeliverable
from . import service
from .schemas import WebhookIn, WebhookPatch

bp = Blueprint("webhooks", __name__, url_prefix="/api")
MANAGE = "integrations.manage"
NEEDS = "Needs the integrations.manage permission."


@bp.get("/projects/<slug>/webhooks")
@openapi.operation("List webhooks", tag="Webhooks", response=service.WebhookOut,
                   paginated=True, description=NEEDS)
def list_webhooks(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    page = web.page_from_request()
    rows, total = service.list_webhooks(session=ctx.session(), project=access.project, page=page)
    return web.paginated([service.webhook_out(h) for h in rows], page, total)


@bp.post("/projects/<slug>/webhooks")
@openapi.operation(
    "Create a webhook", tag="Webhooks", body=WebhookIn, response=service.WebhookOut, status=201,
    description="The secret is generated when absent and shown only in this answer. Targets "
                "must be https in production and may not resolve to private, loopback or "
                "link-local addresses. " + NEEDS)
def create_webhook(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    data = web.json_body(WebhookIn)
    hook, secret = service.create_webhook(session=ctx.session(), project=access.project,
                                          data=data, actor_id=access.user_id,
                                          settings=ctx.settings())
    return web.created(service.webhook_out(hook, secret=secret))


@bp.get("/projects/<slug>/webhooks/<webhook_id>")
@openapi.operation("Get a webhook", tag="Webhooks", response=service.WebhookOut,
                   description="The secret is never shown again. " + NEEDS)
def get_webhook(slug: str, webhook_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    return web.ok(service.webhook_out(
        service.find_webhook(ctx.session(), access.project, webhook_id)))


@bp.route("/projects/<slug>/webhooks/<webhook_id>", methods=["PATCH", "PUT"])
@openapi.operation(
    "Update a webhook", tag="Webhooks", body=WebhookPatch, response=service.WebhookOut,
    description="Only the fields sent change; a new `secret` is shown in this answer only. "
                + NEEDS)
def update_webhook(slug: str, webhook_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    data = web.json_body(WebhookPatch)
    session = ctx.session()
    hook = service.find_webhook(session, access.project, webhook_id)
    hook = service.update_webhook(session=session, hook=hook, data=data, settings=ctx.settings())
    return web.ok(service.webhook_out(hook, secret=data.secret))


@bp.delete("/projects/<slug>/webhooks/<webhook_id>")
@openapi.operation("Delete a webhook", tag="Webhooks", response=service.WebhookOut,
                   description="Answers the deleted webhook. " + NEEDS)
def delete_webhook(slug: str, webhook_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    session = ctx.session()
    hook = service.find_webhook(session, access.project, webhook_id)
    out = service.webhook_out(hook)
    service.delete_webhook(session=session, hook=hook)
    return web.ok(out)


@bp.post("/projects/<slug>/webhooks/<webhook_id>/test")
@openapi.operation(
    "Send a test ping", tag="Webhooks", response=service.DeliveryOut, errors=(409,),
    description="Sends a `ping` payload now and answers the delivery; the body may be empty. "
                "409 when the target cannot be delivered to. " + NEEDS)
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
@openapi.operation(
    "List a webhook's deliveries", tag="Webhooks", response=service.DeliveryOut,
    paginated=True,
    description="Failed deliveries are retried with exponential backoff for at least 24 hours. "
                + NEEDS)
def list_deliveries(slug: str, webhook_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    page = web.page_from_request()
    session = ctx.session()
    hook = service.find_webhook(session, access.project, webhook_id)
    rows, total = service.list_deliveries(session=session, hook=hook, page=page)
    return web.paginated([service.delivery_out(d) for d in rows], page, total)


@bp.get("/projects/<slug>/webhooks/<webhook_id>/deliveries/<delivery_id>")
@openapi.operation(
    "Get a delivery", tag="Webhooks", response=service.DeliveryDetailOut,
    description="The delivery with every attempt logged and the exact body sent. " + NEEDS)
def get_delivery(slug: str, webhook_id: str, delivery_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, MANAGE)
    session = ctx.session()
    hook = service.find_webhook(session, access.project, webhook_id)
    delivery = service.find_delivery(session, hook, delivery_id)
    return web.ok(service.delivery_detail_out(session, delivery))
