"""Use cases on a project's team: members, roles, ownership, invitations, permission overrides.

Invariants:
- A project has exactly one owner. The owner's role changes only by transferring ownership
  (the old owner becomes admin), and the owner cannot leave or be removed.
- Nobody raises their own standing: one's own role may only go down, one's own overrides
  cannot be set or reset (a member granted `team.manage` must not make themself admin).
- Nobody hands out more than they hold: a role above one's own cannot be given (by a role
  change or an invitation), a member ranked above oneself cannot be changed or removed, and
  a permission one lacks cannot be granted (an admin must not be able to grant
  `project.delete` to a second account).
- Every change of a membership, role or override emits member_added / member_updated /
  member_removed with the member's effective permissions, in the same transaction.
- Invitation tokens are random, shown once, stored only as their SHA-256.

The staging helpers (`transfer_ownership`, `remove_membership`, `member_event`) do not commit:
the account-deletion handler runs them inside its inbox transaction.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, cast

import sqlalchemy as sa
from sqlmodel import Session, col, select
from typing_extensions import TypedDict

from bugnet_common import errors
from bugnet_common.auth import Principal
from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects
from bugnet_common.bus.events import isoformat, utcnow
from bugnet_common.openapi import Timestamp, Uuid
from bugnet_common.web import Page

from ..access import PERMISSIONS, ROLE_DEFAULTS, Access, effective_permissions, overrides_of
from ..enums import Role
from ..events import emit
from ..models import Invitation, Member, PermissionOverride, Project, UserRef
from ..projects.service import ensure_user
from ..settings import BugsSettings
from ..views import DELETED_USER, UserBrief, iso, user_brief, users_by_id
from . import mail
from .schemas import InvitationIn


class InvitationGone(errors.ApiError):
    """Decided: an expired, revoked or used invitation answers 410 Gone, not 400. The token
    was valid once and nothing in the request can fix it; the invitee needs a new invitation."""

    status, code, default_message = 410, "invitation_gone", "This invitation is no longer valid"


@dataclass(frozen=True)
class Invited:
    invitation: Invitation
    token: str  # shown this once
    url: str
    emailed: bool


# ---- shapes ---------------------------------------------------------------------------------

def ordered(perms: Iterable[str]) -> list[str]:
    """Permission names in the spec's order (stable for clients, unlike set order)."""
    wanted = set(perms)
    return [p for p in PERMISSIONS if p in wanted]


class MemberOut(TypedDict):
    """A member of a project. A deleted account reads "Deleted user", without email; one not
    known to this service yet has no name or email."""

    user_id: Uuid
    email: str | None
    display_name: str | None
    avatar: str | None
    role: Role
    joined_at: Timestamp


InvitedRole = Literal["admin", "member"]


class InvitationOut(TypedDict):
    """An invitation to join a project (it expires after 7 days and is single use)."""

    id: Uuid
    email: str
    role: InvitedRole
    invited_by: UserBrief | None
    created_at: Timestamp
    expires_at: Timestamp
    accepted_at: Timestamp | None
    revoked_at: Timestamp | None


class RoleDefaultsOut(TypedDict):
    owner: list[str]
    admin: list[str]
    member: list[str]


class PermissionMatrixOut(TypedDict):
    """Every permission name, and each role's default permissions."""

    permissions: list[str]
    roles: RoleDefaultsOut


class MemberPermissionsOut(TypedDict):
    """A member's role, effective permissions and overrides (name: granted or denied)."""

    user_id: Uuid
    role: Role
    permissions: list[str]
    overrides: dict[str, bool]


def member_out(member: Member, user: UserRef | None) -> MemberOut:
    deleted = user is not None and user.deleted
    return MemberOut(
        user_id=member.user_id,
        email=None if user is None or deleted else user.email,
        display_name=DELETED_USER if deleted else (user.display_name if user else None),
        avatar=None if user is None or deleted else user.avatar,
        role=cast(Role, member.role),
        joined_at=isoformat(member.joined_at),
    )


def invitation_out(inv: Invitation, users: dict[str, UserRef]) -> InvitationOut:
    return InvitationOut(
        id=inv.id, email=inv.email, role=cast(InvitedRole, inv.role),
        invited_by=user_brief(inv.invited_by, users),
        created_at=isoformat(inv.created_at), expires_at=isoformat(inv.expires_at),
        accepted_at=iso(inv.accepted_at), revoked_at=iso(inv.revoked_at),
    )


# ---- staging helpers (no commit) ------------------------------------------------------------

def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def permissions_of(session: Session, member: Member) -> frozenset[str]:
    return effective_permissions(member.role,
                                 overrides_of(session, member.project_id, member.user_id))


def member_event(session: Session, subject: str, *, project_id: str, user_id: str,
                 member: Member | None) -> None:
    """Stage member_added/updated/removed; `member` None once removed."""
    session.flush()
    emit(session, subject, ev.MemberChanged(
        project_id=project_id, user_id=user_id, role=None if member is None else member.role,
        permissions=[] if member is None else sorted(permissions_of(session, member))))


def _drop_overrides(session: Session, project_id: str, user_id: str) -> None:
    session.exec(sa.delete(PermissionOverride).where(
        col(PermissionOverride.project_id) == project_id,
        col(PermissionOverride.user_id) == user_id))


def transfer_ownership(session: Session, *, owner: Member | None, successor: Member) -> None:
    """Make `successor` the owner and the old owner (if any) an admin."""
    # The owner's permissions are all of them; leftover overrides would only mislead.
    _drop_overrides(session, successor.project_id, successor.user_id)
    successor.role = "owner"
    session.add(successor)
    if owner is not None:
        owner.role = "admin"
        session.add(owner)
    member_event(session, subjects.MEMBER_UPDATED, project_id=successor.project_id,
                 user_id=successor.user_id, member=successor)
    if owner is not None:
        member_event(session, subjects.MEMBER_UPDATED, project_id=owner.project_id,
                     user_id=owner.user_id, member=owner)


def remove_membership(session: Session, member: Member) -> None:
    """Remove `member` and their overrides from the project."""
    project_id, user_id = member.project_id, member.user_id
    _drop_overrides(session, project_id, user_id)
    session.delete(member)
    member_event(session, subjects.MEMBER_REMOVED, project_id=project_id, user_id=user_id,
                 member=None)


def successor_for(session: Session, project_id: str, leaving: str) -> Member | None:
    """Who inherits a project: the longest-standing admin, else the longest-standing member."""
    rank = sa.case((col(Member.role) == "admin", 0), else_=1)
    return session.exec(select(Member).where(
        Member.project_id == project_id, Member.user_id != leaving)
        .order_by(rank, col(Member.joined_at), col(Member.user_id))).first()


RANK = {"member": 1, "admin": 2, "owner": 3}


def _check_rank(access: Access, *, target_role: str | None = None,
                new_role: str | None = None) -> None:
    mine = RANK[access.role]
    if target_role is not None and RANK[target_role] > mine:
        raise errors.Forbidden(f"You cannot change or remove a member ranked above you ({target_role})")
    if new_role is not None and RANK[new_role] > mine:
        raise errors.Forbidden(f"You cannot give the '{new_role}' role: it is above your own")


def _member(session: Session, project: Project, user_id: str) -> Member:
    member = session.get(Member, (project.id, user_id)) if is_uuid(user_id) else None
    if member is None:
        raise errors.NotFound("Member not found")
    return member


# ---- members --------------------------------------------------------------------------------

def list_members(*, session: Session, project: Project,
                 page: Page) -> tuple[list[tuple[Member, UserRef | None]], int]:
    """One page of the team, the owner first, then in the order they joined; and the total."""
    total = session.exec(select(sa.func.count()).select_from(Member)
                         .where(Member.project_id == project.id)).one()
    rank = sa.case((col(Member.role) == "owner", 0), else_=1)
    rows = session.exec(
        select(Member, UserRef).outerjoin(UserRef, col(UserRef.id) == Member.user_id)
        .where(Member.project_id == project.id)
        .order_by(rank, col(Member.joined_at), col(Member.user_id))
        .offset(page.offset).limit(page.limit)).all()
    return [(m, u) for m, u in rows], int(total)


def member_with_user(session: Session, member: Member) -> MemberOut:
    return member_out(member, session.get(UserRef, member.user_id))


def change_role(*, session: Session, access: Access, user_id: str, role: str) -> Member:
    """Set a member's role; `owner` transfers ownership (the owner only)."""
    target = _member(session, access.project, user_id)
    is_self = target.user_id == access.user_id
    if role == "owner":
        if access.role != "owner":
            raise errors.Forbidden("Only the owner can transfer ownership")
        if not is_self:
            transfer_ownership(session, owner=_member(session, access.project, access.user_id),
                               successor=target)
            session.commit()
        return target
    if target.role == "owner":
        if is_self:
            raise errors.Conflict("You are the owner: transfer ownership to another member "
                                  "before changing your own role")
        raise errors.Forbidden("The owner's role cannot be changed; only the owner can "
                               "transfer ownership")
    if is_self and role == "admin" and target.role != "admin":
        raise errors.Forbidden("You cannot raise your own role")
    _check_rank(access, target_role=target.role, new_role=role)
    if target.role != role:
        target.role = role
        session.add(target)
        member_event(session, subjects.MEMBER_UPDATED, project_id=target.project_id,
                     user_id=target.user_id, member=target)
        session.commit()
    return target


def remove_member(*, session: Session, access: Access, user_id: str) -> Member:
    """Remove a member (team.manage), or leave the project (anyone but the owner)."""
    target = _member(session, access.project, user_id)
    is_self = target.user_id == access.user_id
    if not is_self:
        access.require("team.manage")
    if target.role == "owner":
        if is_self:
            raise errors.Conflict("The owner cannot leave the project; transfer ownership "
                                  "to another member first")
        raise errors.Forbidden("The owner cannot be removed from the project")
    if not is_self:
        _check_rank(access, target_role=target.role)
    remove_membership(session, target)
    session.commit()
    return target


# ---- invitations ----------------------------------------------------------------------------

def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _pending(now: Any) -> list[Any]:
    return [col(Invitation.accepted_at).is_(None), col(Invitation.revoked_at).is_(None),
            col(Invitation.expires_at) > now]


def invite(*, session: Session, access: Access, data: InvitationIn,
           settings: BugsSettings) -> Invited:
    """Invite an email address to the team; emailed when SMTP is configured."""
    project, now = access.project, utcnow()
    _check_rank(access, new_role=data.role)
    member = session.exec(select(Member.user_id).join(UserRef, col(UserRef.id) == Member.user_id)
                          .where(Member.project_id == project.id, col(UserRef.deleted).is_(False),
                                 sa.func.lower(UserRef.email) == data.email)).first()
    if member is not None:
        raise errors.Conflict(f"{data.email} is already a member of this project")
    pending = session.exec(select(Invitation.id).where(
        Invitation.project_id == project.id, sa.func.lower(Invitation.email) == data.email,
        *_pending(now))).first()
    if pending is not None:
        raise errors.Conflict(f"{data.email} already has a pending invitation; revoke it to "
                              "send a new one")
    token = secrets.token_urlsafe(32)
    inv = Invitation(id=str(uuid.uuid4()), project_id=project.id, email=data.email,
                     role=data.role, token_hash=hash_token(token), invited_by=access.user_id,
                     created_at=now, expires_at=now + timedelta(days=settings.invitation_ttl_days))
    session.add(inv)
    inviter = session.get(UserRef, access.user_id)
    inviter_name = inviter.display_name if inviter is not None and inviter.display_name else None
    session.commit()
    url = mail.accept_url(settings, token)
    emailed = False
    if settings.smtp_host:  # after the commit: a failed email must not lose the invitation
        msg = mail.invitation_message(settings, to=inv.email, project_name=project.name,
                                      inviter=inviter_name, role=inv.role, url=url)
        emailed = mail.send(settings, msg, ref=inv.id)
    return Invited(invitation=inv, token=token, url=url, emailed=emailed)


def list_invitations(*, session: Session, project: Project,
                     page: Page) -> tuple[list[Invitation], int]:
    """One page of the pending invitations, newest first; and the total."""
    where = [Invitation.project_id == project.id, *_pending(utcnow())]
    total = session.exec(select(sa.func.count()).select_from(Invitation).where(*where)).one()
    rows = session.exec(select(Invitation).where(*where)
                        .order_by(col(Invitation.created_at).desc(), col(Invitation.id).desc())
                        .offset(page.offset).limit(page.limit)).all()
    return list(rows), int(total)


def inviters(session: Session, invitations: Iterable[Invitation]) -> dict[str, UserRef]:
    return users_by_id(session, [i.invited_by for i in invitations])


def revoke_invitation(*, session: Session, project: Project, invitation_id: str) -> Invitation:
    """Revoke a pending invitation; its token stops working."""
    inv = session.get(Invitation, invitation_id) if is_uuid(invitation_id) else None
    if inv is None or inv.project_id != project.id or inv.revoked_at is not None:
        raise errors.NotFound("Invitation not found")
    if inv.accepted_at is not None:
        raise errors.Conflict("This invitation was already accepted; remove the member instead")
    inv.revoked_at = utcnow()
    session.add(inv)
    session.commit()
    return inv


def accept_invitation(*, session: Session, principal: Principal,
                      token: str) -> tuple[Project, Member]:
    """Join the invitation's project as the signed-in user, whose email must match."""
    inv = session.exec(select(Invitation).where(Invitation.token_hash == hash_token(token))
                       .with_for_update()).first()
    if inv is None:
        raise errors.NotFound("Invitation not found")
    if inv.email.lower() != (principal.email or "").lower():
        raise errors.Forbidden("This invitation was sent to another email address; sign in "
                               "with that address to accept it")
    if inv.revoked_at is not None:
        raise InvitationGone("This invitation was revoked; ask for a new one")
    project = session.get(Project, inv.project_id)
    assert project is not None  # invitations go with their project (ON DELETE CASCADE)
    if session.get(Member, (project.id, principal.user_id)) is not None:
        raise errors.Conflict("You are already a member of this project")
    if inv.accepted_at is not None:
        raise InvitationGone("This invitation has already been used")
    now = utcnow()
    if inv.expires_at <= now:
        raise InvitationGone(f"This invitation expired on {iso(inv.expires_at)}; ask for a "
                             "new one")
    ensure_user(session, principal)
    member = Member(project_id=project.id, user_id=principal.user_id, role=inv.role,
                    joined_at=now)
    session.add(member)
    inv.accepted_at = now
    session.add(inv)
    member_event(session, subjects.MEMBER_ADDED, project_id=project.id,
                 user_id=principal.user_id, member=member)
    session.commit()
    return project, member


# ---- permissions ----------------------------------------------------------------------------

def permission_matrix() -> PermissionMatrixOut:
    return PermissionMatrixOut(
        permissions=list(PERMISSIONS),
        roles=RoleDefaultsOut(owner=ordered(ROLE_DEFAULTS["owner"]),
                              admin=ordered(ROLE_DEFAULTS["admin"]),
                              member=ordered(ROLE_DEFAULTS["member"])))


def member_permissions(*, session: Session, project: Project,
                       user_id: str) -> MemberPermissionsOut:
    """A member's role, effective permissions and overrides."""
    member = _member(session, project, user_id)
    overrides = overrides_of(session, project.id, member.user_id)
    return MemberPermissionsOut(
        user_id=member.user_id, role=cast(Role, member.role),
        permissions=ordered(effective_permissions(member.role, overrides)),
        overrides={p: overrides[p] for p in ordered(overrides)})


def _editable(session: Session, access: Access, user_id: str) -> Member:
    member = _member(session, access.project, user_id)
    if member.role == "owner":
        raise errors.ValidationFailed("The owner's permissions cannot be reduced",
                                      details={"overrides": "the owner has every permission"})
    if member.user_id == access.user_id:
        raise errors.Forbidden("You cannot change your own permissions")
    return member


def set_overrides(*, session: Session, access: Access, user_id: str,
                  overrides: dict[str, bool]) -> MemberPermissionsOut:
    """Replace a member's overrides (grants and denials on top of the role)."""
    member = _editable(session, access, user_id)
    _check_rank(access, target_role=member.role)
    beyond = sorted(p for p, granted in overrides.items() if granted and not access.can(p))
    if beyond:
        raise errors.Forbidden(f"You cannot grant permissions you do not have: {', '.join(beyond)}")
    if overrides_of(session, member.project_id, member.user_id) != overrides:
        _drop_overrides(session, member.project_id, member.user_id)
        session.add_all(PermissionOverride(project_id=member.project_id, user_id=member.user_id,
                                           permission=name, granted=granted)
                        for name, granted in overrides.items())
        member_event(session, subjects.MEMBER_UPDATED, project_id=member.project_id,
                     user_id=member.user_id, member=member)
        session.commit()
    return member_permissions(session=session, project=access.project, user_id=user_id)


def reset_overrides(*, session: Session, access: Access, user_id: str) -> MemberPermissionsOut:
    """Drop a member's overrides: back to the role's defaults."""
    member = _member(session, access.project, user_id)
    if member.role != "owner" and overrides_of(session, member.project_id, member.user_id):
        _editable(session, access, user_id)
        _check_rank(access, target_role=member.role)
        _drop_overrides(session, member.project_id, member.user_id)
        member_event(session, subjects.MEMBER_UPDATED, project_id=member.project_id,
                     user_id=member.user_id, member=member)
        session.commit()
    return member_permissions(session=session, project=access.project, user_id=user_id)
