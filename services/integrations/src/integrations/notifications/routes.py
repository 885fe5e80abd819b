"""HTTP routes of notifications (spec §7): the signed-in user's in-app list and preferences.

`GET /api/notifications` lists unread notifications first, then newest first; `?unread=true`
(or `false`) filters; `meta.unread` counts every unread one.
"""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import openapi, web

from .. import context as ctx
from . import service
from .schemas import PreferencesIn, UnreadFilter

bp = Blueprint("notifications", __name__, url_prefix="/api")


@bp.get("/notifications")
@openapi.operation(
    "List my notifications", tag="Notifications", query=UnreadFilter,
    response=service.NotificationOut, paginated=True, meta=service.NotificationsPageMeta,
    description="The signed-in user's in-app notifications, unread first, then newest first; "
                "`meta.unread` counts every unread one.")
def list_notifications() -> ResponseReturnValue:
    user = ctx.principal()
    page = web.page_from_request()
    unread = web.query_args(UnreadFilter).unread
    items, total, unread_count = service.list_notifications(
        session=ctx.session(), user_id=user.user_id, page=page, unread=unread)
    pages = -(-total // page.limit) if total else 0
    return web.ok(items, meta={"page": page.page, "limit": page.limit, "total": total,
                               "pages": pages, "unread": unread_count})


@bp.post("/notifications/<notification_id>/read")
@openapi.operation("Mark a notification read", tag="Notifications",
                   response=service.NotificationOut,
                   description="Marking it again changes nothing. 404 for another user's "
                               "notification.")
def read_notification(notification_id: str) -> ResponseReturnValue:
    user = ctx.principal()
    return web.ok(service.mark_read(session=ctx.session(), user_id=user.user_id,
                                    notification_id=notification_id))


@bp.post("/notifications/read-all")
@openapi.operation("Mark all my notifications read", tag="Notifications",
                   response=service.ReadAllOut,
                   description="Answers how many were unread. The body may be empty.")
def read_all_notifications() -> ResponseReturnValue:
    user = ctx.principal()
    out: service.ReadAllOut = {
        "updated": service.mark_all_read(session=ctx.session(), user_id=user.user_id)}
    return web.ok(out)


@bp.get("/notifications/preferences")
@openapi.operation(
    "Get my notification preferences", tag="Notifications", response=service.PreferencesOut,
    description="For each channel (`email`, `in_app`, `discord_dm`) a map of event to bool "
                "(what applies, defaults included), and per-project overrides by project slug.")
def get_preferences() -> ResponseReturnValue:
    user = ctx.principal()
    return web.ok(service.preferences_out(ctx.session(), user.user_id))


@bp.route("/notifications/preferences", methods=["PUT", "PATCH"])
@openapi.operation(
    "Update my notification preferences", tag="Notifications", body=PreferencesIn,
    response=service.PreferencesOut,
    description="Merges: in a channel map, true/false sets an event and null resets it (to "
                "the default globally, to the global choice in a project); a project given as "
                "null drops all of its overrides. Projects are named by slug and must be ones "
                "the user is a member of.")
def update_preferences() -> ResponseReturnValue:
    user = ctx.principal()
    data = web.json_body(PreferencesIn)
    return web.ok(service.update_preferences(session=ctx.session(), user_id=user.user_id,
                                             data=data))
