"""HTTP routes of the team area (spec §5, Team and permissions)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import web

from .. import context as ctx
from ..views import project_out
from . import service
from .schemas import InvitationIn, OverridesIn, RoleIn

bp = Blueprint("team", __name__, url_prefix="/api")


@bp.get("/projects/<slug>/team")
def list_members(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "team.view")
    page = web.page_from_request()
    rows, total = service.list_members(session=ctx.session(), project=access.project, page=page)
    return web.paginated([service.member_out(m, u) for m, u in rows], page, total)


@bp.route("/projects/<slug>/team/<user_id>", methods=["PATCH", "PUT"])
def change_role(slug: str, user_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "team.manage", for_update=True)
    data = web.json_body(RoleIn)
    session = ctx.session()
    member = service.change_role(session=session, access=access, user_id=user_id, role=data.role)
    return web.ok(service.member_with_user(session, member))


@bp.delete("/projects/<slug>/team/<user_id>")
def remove_member(slug: str, user_id: str) -> ResponseReturnValue:
    # Any member may call this (to leave); removing someone else needs team.manage (service).
    access = ctx.access(slug, for_update=True)
    session = ctx.session()
    member = service.remove_member(session=session, access=access, user_id=user_id)
    return web.ok(service.member_with_user(session, member))


@bp.post("/projects/<slug>/team/invitations")
def invite(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "team.manage", for_update=True)
    data = web.json_body(InvitationIn)
    session = ctx.session()
    invited = service.invite(session=session, access=access, data=data, settings=ctx.settings())
    inv = invited.invitation
    return web.created(service.invitation_out(inv, service.inviters(session, [inv]))
                       | {"token": invited.token, "url": invited.url,
                          "emailed": invited.emailed})


@bp.get("/projects/<slug>/team/invitations")
def list_invitations(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "team.manage")
    page = web.page_from_request()
    session = ctx.session()
    rows, total = service.list_invitations(session=session, project=access.project, page=page)
    users = service.inviters(session, rows)
    return web.paginated([service.invitation_out(i, users) for i in rows], page, total)


@bp.delete("/projects/<slug>/team/invitations/<invitation_id>")
def revoke_invitation(slug: str, invitation_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "team.manage", for_update=True)
    session = ctx.session()
    inv = service.revoke_invitation(session=session, project=access.project,
                                    invitation_id=invitation_id)
    return web.ok(service.invitation_out(inv, service.inviters(session, [inv])))


@bp.post("/invitations/<token>/accept")
def accept_invitation(token: str) -> ResponseReturnValue:
    # No body is read: an empty one, with or without a Content-Type, is what clients send.
    principal = ctx.principal()
    project, member = service.accept_invitation(session=ctx.session(), principal=principal,
                                                token=token)
    return web.ok({"project": project_out(project, member.role), "role": member.role})


@bp.get("/projects/<slug>/permissions")
def permission_matrix(slug: str) -> ResponseReturnValue:
    ctx.access(slug, "team.view")
    return web.ok(service.permission_matrix())


@bp.get("/projects/<slug>/team/<user_id>/permissions")
def member_permissions(slug: str, user_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "team.view")
    return web.ok(service.member_permissions(session=ctx.session(), project=access.project,
                                             user_id=user_id))


@bp.put("/projects/<slug>/team/<user_id>/permissions")
def set_overrides(slug: str, user_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "team.manage", for_update=True)
    data = web.json_body(OverridesIn)
    return web.ok(service.set_overrides(session=ctx.session(), access=access, user_id=user_id,
                                        overrides=data.overrides))


@bp.delete("/projects/<slug>/team/<user_id>/permissions")
def reset_overrides(slug: str, user_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "team.manage", for_update=True)
    return web.ok(service.reset_overrides(session=ctx.session(), access=access, user_id=user_id))
