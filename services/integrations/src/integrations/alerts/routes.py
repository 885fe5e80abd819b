"""HTTP routes of alert rules (spec §7); every one needs integrations.manage."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import web

from .. import context as ctx
from . import service
from .schemas import AlertIn, AlertPatch

bp = Blueprint("alerts", __name__, url_prefix="/api")
PERMISSION = "integrations.manage"


@bp.get("/projects/<slug>/alerts")
def list_alerts(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, PERMISSION)
    page = web.page_from_request()
    rows, total = service.list_alerts(session=ctx.session(), project=access.project, page=page)
    return web.paginated([service.alert_out(r) for r in rows], page, total)


@bp.post("/projects/<slug>/alerts")
def create_alert(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, PERMISSION)
    data = web.json_body(AlertIn)
    rule = service.create_alert(session=ctx.session(), project=access.project,
                                actor_id=access.user_id, data=data)
    return web.created(service.alert_out(rule))


@bp.get("/projects/<slug>/alerts/<alert_id>")
def get_alert(slug: str, alert_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, PERMISSION)
    return web.ok(service.alert_out(service.find_rule(ctx.session(), access.project, alert_id)))


@bp.route("/projects/<slug>/alerts/<alert_id>", methods=["PATCH", "PUT"])
def update_alert(slug: str, alert_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, PERMISSION)
    data = web.json_body(AlertPatch)
    rule = service.update_alert(session=ctx.session(), project=access.project,
                                alert_id=alert_id, data=data)
    return web.ok(service.alert_out(rule))


@bp.delete("/projects/<slug>/alerts/<alert_id>")
def delete_alert(slug: str, alert_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, PERMISSION)
    rule = service.delete_alert(session=ctx.session(), project=access.project,
                                alert_id=alert_id)
    return web.ok(service.alert_out(rule))


@bp.get("/projects/<slug>/alerts/<alert_id>/firings")
def list_firings(slug: str, alert_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, PERMISSION)
    page = web.page_from_request()
    rows, total = service.list_firings(session=ctx.session(), project=access.project,
                                       alert_id=alert_id, page=page)
    return web.paginated([service.firing_out(f) for f in rows], page, total)
