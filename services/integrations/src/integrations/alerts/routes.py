"""HTTP routes of alert rules (spec §7); every one needs integrations.manage."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import openapi, web

from .. import context as ctx
from . import service
from .schemas import AlertIn, AlertPatch

bp = Blueprint("alerts", __name__, url_prefix="/api")
PERMISSION = "integrations.manage"
NEEDS = "Needs the integrations.manage permission."


@bp.get("/projects/<slug>/alerts")
@openapi.operation("List alert rules", tag="Alerts", response=service.AlertOut,
                   paginated=True, description=NEEDS)
def list_alerts(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, PERMISSION)
    page = web.page_from_request()
    rows, total = service.list_alerts(session=ctx.session(), project=access.project, page=page)
    return web.paginated([service.alert_out(r) for r in rows], page, total)


@bp.post("/projects/<slug>/alerts")
@openapi.operation(
    "Create an alert rule", tag="Alerts", body=AlertIn, response=service.AlertOut, status=201,
    errors=(409,),
    description="`threshold` depends on the condition: a count for new_bug, "
                "new_crash_signature and crash_spike (default 1), a crash-free rate in percent "
                "for crash_free_below (required), null for regression_detected. A rule fires "
                "at most once per `window_minutes`. 409 when the project has 100 rules. "
                + NEEDS)
def create_alert(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, PERMISSION)
    data = web.json_body(AlertIn)
    rule = service.create_alert(session=ctx.session(), project=access.project,
                                actor_id=access.user_id, data=data)
    return web.created(service.alert_out(rule))


@bp.get("/projects/<slug>/alerts/<alert_id>")
@openapi.operation("Get an alert rule", tag="Alerts", response=service.AlertOut,
                   description=NEEDS)
def get_alert(slug: str, alert_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, PERMISSION)
    return web.ok(service.alert_out(service.find_rule(ctx.session(), access.project, alert_id)))


@bp.route("/projects/<slug>/alerts/<alert_id>", methods=["PATCH", "PUT"])
@openapi.operation(
    "Update an alert rule", tag="Alerts", body=AlertPatch, response=service.AlertOut,
    description="Only the fields sent change; the threshold and filters must fit the "
                "(new) condition. Changing the condition or filters restarts the counting. "
                + NEEDS)
def update_alert(slug: str, alert_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, PERMISSION)
    data = web.json_body(AlertPatch)
    rule = service.update_alert(session=ctx.session(), project=access.project,
                                alert_id=alert_id, data=data)
    return web.ok(service.alert_out(rule))


@bp.delete("/projects/<slug>/alerts/<alert_id>")
@openapi.operation("Delete an alert rule", tag="Alerts", response=service.AlertOut,
                   description="Answers the deleted rule. " + NEEDS)
def delete_alert(slug: str, alert_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, PERMISSION)
    rule = service.delete_alert(session=ctx.session(), project=access.project,
                                alert_id=alert_id)
    return web.ok(service.alert_out(rule))


@bp.get("/projects/<slug>/alerts/<alert_id>/firings")
@openapi.operation("List an alert rule's firings", tag="Alerts",
                   response=service.AlertFiringOut, paginated=True,
                   description="Each time the rule fired, newest first. " + NEEDS)
def list_firings(slug: str, alert_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, PERMISSION)
    page = web.page_from_request()
    rows, total = service.list_firings(session=ctx.session(), project=access.project,
                                       alert_id=alert_id, page=page)
    return web.paginated([service.firing_out(f) for f in rows], page, total)
