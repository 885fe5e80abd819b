"""HTTP routes of notifications (spec §7): the signed-in user's in-app list and preferences.

`GET /api/notifications` lists unread notifications first, then newest first; `?unread=true`
(or `false`) filters; `meta.unread` counts every unread one.
"""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from bugnet_common import errors, web

from .. import context as ctx
from . import service
from .schemas import PreferencesIn

bp = Blueprint("notifications", __name__, url_prefix="/api")

_BOOLS = {"true": True, "1": True, "false": False, "0": False}


def _unread_filter() -> bool | None:
    raw = request.args.get("unread")
    if raw is None or raw == "":
        return None
    value = _BOOLS.get(raw.lower())
    if value is None:
        raise errors.ValidationFailed("'unread' must be true or false",
                                      details={"unread": "must be true or false"})
    return value


@bp.get("/notifications")
def list_notifications() -> ResponseReturnValue:
    user = ctx.principal()
    page = web.page_from_request()
    items, total, unread = service.list_notifications(
        session=ctx.session(), user_id=user.user_id, page=page, unread=_unread_filter())
    pages = -(-total // page.limit) if total else 0
    return web.ok(items, meta={"page": page.page, "limit": page.limit, "total": total,
                               "pages": pages, "unread": unread})


@bp.post("/notifications/<notification_id>/read")
def read_notification(notification_id: str) -> ResponseReturnValue:
    user = ctx.principal()
    return web.ok(service.mark_read(session=ctx.session(), user_id=user.user_id,
                                    notification_id=notification_id))


@bp.post("/notifications/read-all")
def read_all_notifications() -> ResponseReturnValue:
    user = ctx.principal()
    return web.ok({"updated": service.mark_all_read(session=ctx.session(),
                                                    user_id=user.user_id)})


@bp.get("/notifications/preferences")
def get_preferences() -> ResponseReturnValue:
    user = ctx.principal()
    return web.ok(service.preferences_out(ctx.session(), user.user_id))


@bp.route("/notifications/preferences", methods=["PUT", "PATCH"])
def update_preferences() -> ResponseReturnValue:
    user = ctx.principal()
    data = web.json_body(PreferencesIn)
    return web.ok(service.update_preferences(session=ctx.session(), user_id=user.user_id,
                                             data=data))
