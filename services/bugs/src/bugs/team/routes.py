"""HTTP routes of the team area (spec §5, Team and permissions)."""

from __future__ import annotations

from typing import cast

from flask import Blueprint
from flask.typing import ResponseReturnValue
from typing_extensions import TypedDict

from bugnet_common import openapi, web

from .. import context as ctx
from ..enums import Role
from ..views import ProjectOut, project_out
from . import service
from .schemas import InvitationIn, OverridesIn, RoleIn
from .service import (
    InvitationOut,
    MemberOut,
    MemberPermissionsOut,
    PermissionMatrixOut,
)

bp = Blueprint("team", __name__, url_prefix="/api")


class InvitationCreatedOut(InvitationOut):
    """A new invitation with its token and link, shown this once."""

    token: str
    url: str
    emailed: bool


class MembershipOut(TypedDict):
    """The project joined and the role in it."""

    project: ProjectOut
    role: Role


@bp.get("/projects/<slug>/team")
@openapi.operation("List the team", tag="Team", response=MemberOut, paginated=True,
                   description="Needs `team.view`.")
def list_members(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "team.view")
    page = web.page_from_request()
    rows, total = service.list_members(session=ctx.session(), project=access.project, page=page)
    return web.paginated([service.member_out(m, u) for m, u in rows], page, total)


@bp.route("/projects/<slug>/team/<user_id>", methods=["PATCH", "PUT"])
@openapi.operation("Change a member's role", tag="Team", body=RoleIn, response=MemberOut,
                   errors=(409,),
                   description="Needs `team.manage`; nobody gives a role above their own or "
                               "changes a member ranked above them. `owner` transfers "
                               "ownership (the owner only; the old owner becomes admin).")
def change_role(slug: str, user_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "team.manage", for_update=True)
    data = web.json_body(RoleIn)
    session = ctx.session()
    member = service.change_role(session=session, access=access, user_id=user_id, role=data.role)
    return web.ok(service.member_with_user(session, member))


@bp.delete("/projects/<slug>/team/<user_id>")
@openapi.operation("Remove a member", tag="Team", response=MemberOut, errors=(409,),
                   description="Needs `team.manage`, except to leave (a member removing "
                               "themself). The owner cannot leave or be removed. Answers the "
                               "removed membership.")
def remove_member(slug: str, user_id: str) -> ResponseReturnValue:
    # Any member may call this (to leave); removing someone else needs team.manage (service).
    access = ctx.access(slug, for_update=True)
    session = ctx.session()
    member = service.remove_member(session=session, access=access, user_id=user_id)
    return web.ok(service.member_with_user(session, member))


@bp.post("/projects/<slug>/team/invitations")
@openapi.operation("Invite someone to the team", tag="Team", body=InvitationIn,
                   response=InvitationCreatedOut, status=201, errors=(409,),
                   description="Needs `team.manage`. The token is shown this once and emailed "
                               "to the invitee when mail is configured; the invitation expires "
                               "after 7 days. 409 when the address is already a member or "
                               "already invited.")
def invite(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "team.manage", for_update=True)
    data = web.json_body(InvitationIn)
    session = ctx.session()
    invited = service.invite(session=session, access=access, data=data, settings=ctx.settings())
    inv = invited.invitation
    return web.created(InvitationCreatedOut(
        **service.invitation_out(inv, service.inviters(session, [inv])),
        token=invited.token, url=invited.url, emailed=invited.emailed))


@bp.get("/projects/<slug>/team/invitations")
@openapi.operation("List pending invitations", tag="Team", response=InvitationOut,
                   paginated=True, description="Needs `team.manage`.")
def list_invitations(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "team.manage")
    page = web.page_from_request()
    session = ctx.session()
    rows, total = service.list_invitations(session=session, project=access.project, page=page)
    users = service.inviters(session, rows)
    return web.paginated([service.invitation_out(i, users) for i in rows], page, total)


@bp.delete("/projects/<slug>/team/invitations/<invitation_id>")
@openapi.operation("Revoke an invitation", tag="Team", response=InvitationOut, errors=(409,),
                   description="Needs `team.manage`. Its token stops working; an accepted "
                               "invitation cannot be revoked (409).")
def revoke_invitation(slug: str, invitation_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "team.manage", for_update=True)
    session = ctx.session()
    inv = service.revoke_invitation(session=session, project=access.project,
                                    invitation_id=invitation_id)
    return web.ok(service.invitation_out(inv, service.inviters(session, [inv])))


@bp.post("/invitations/<token>/accept")
@openapi.operation("Accept an invitation", tag="Team", response=MembershipOut,
                   errors=(403, 409, 410),
                   description="The signed-in user's email must be the invited one (403 "
                               "otherwise). An expired, revoked or used invitation answers "
                               "410 Gone. Takes no body.")
def accept_invitation(token: str) -> ResponseReturnValue:
    # No body is read: an empty one, with or without a Content-Type, is what clients send.
    principal = ctx.principal()
    project, member = service.accept_invitation(session=ctx.session(), principal=principal,
                                                token=token)
    return web.ok(MembershipOut(project=project_out(project, member.role),
                                role=cast(Role, member.role)))


@bp.get("/projects/<slug>/permissions")
@openapi.operation("List permissions and role defaults", tag="Team",
                   response=PermissionMatrixOut, description="Needs `team.view`.")
def permission_matrix(slug: str) -> ResponseReturnValue:
    ctx.access(slug, "team.view")
    return web.ok(service.permission_matrix())


@bp.get("/projects/<slug>/team/<user_id>/permissions")
@openapi.operation("Get a member's permissions", tag="Team", response=MemberPermissionsOut,
                   description="Needs `team.view`. The effective permissions and the "
                               "overrides on top of the role.")
def member_permissions(slug: str, user_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "team.view")
    return web.ok(service.member_permissions(session=ctx.session(), project=access.project,
                                             user_id=user_id))


@bp.put("/projects/<slug>/team/<user_id>/permissions")
@openapi.operation("Set a member's permission overrides", tag="Team", body=OverridesIn,
                   response=MemberPermissionsOut,
                   description="Needs `team.manage`. Replaces the member's overrides (`true` "
                               "grants, `false` denies). The owner's permissions cannot be "
                               "reduced, one's own cannot be changed, and nobody grants a "
                               "permission they lack.")
def set_overrides(slug: str, user_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "team.manage", for_update=True)
    data = web.json_body(OverridesIn)
    return web.ok(service.set_overrides(session=ctx.session(), access=access, user_id=user_id,
                                        overrides=data.overrides))


@bp.delete("/projects/<slug>/team/<user_id>/permissions")
@openapi.operation("Reset a member's permissions", tag="Team", response=MemberPermissionsOut,
                   description="Needs `team.manage`. Drops the overrides: back to the role's "
                               "defaults.")
def reset_overrides(slug: str, user_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "team.manage", for_update=True)
    return web.ok(service.reset_overrides(session=ctx.session(), access=access, user_id=user_id))
