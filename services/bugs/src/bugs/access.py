"""Who may do what in a project: roles, permissions, overrides, and resolving the caller.

Every project route is authorized by permission, never by role name. A caller who is not a
member gets 404 (never 403): a project's existence must not leak.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from bugnet_common import apikeys, errors
from bugnet_common.auth import Principal

from .models import Member, PermissionOverride, Project

PERMISSIONS: tuple[str, ...] = (
    "bugs.view", "bugs.create", "bugs.edit", "bugs.assign", "bugs.delete",
    "comments.create", "comments.internal", "labels.manage", "team.view", "team.manage",
    "settings.manage", "api_key.manage", "integrations.manage", "analytics.view",
    "changelogs.manage", "project.delete",
)
ROLES: tuple[str, ...] = ("owner", "admin", "member")

ROLE_DEFAULTS: dict[str, frozenset[str]] = {
    "owner": frozenset(PERMISSIONS),
    "admin": frozenset(PERMISSIONS) - {"project.delete"},
    "member": frozenset({"bugs.view", "bugs.create", "bugs.edit", "bugs.assign",
                         "comments.create", "comments.internal", "analytics.view",
                         "team.view"}),
}


def effective_permissions(role: str, overrides: dict[str, bool]) -> frozenset[str]:
    """The role's defaults with the member's grants added and denials removed; the owner's
    permissions cannot be reduced."""
    if role == "owner":
        return ROLE_DEFAULTS["owner"]
    granted = {p for p, on in overrides.items() if on and p in PERMISSIONS}
    denied = {p for p, on in overrides.items() if not on}
    return frozenset((ROLE_DEFAULTS[role] | granted) - denied)


@dataclass(frozen=True)
class Access:
    """The caller's standing in one project."""

    project: Project
    user_id: str
    role: str
    permissions: frozenset[str]

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str) -> None:
        if permission not in self.permissions:
            raise errors.Forbidden(f"You need the '{permission}' permission to do this")


def overrides_of(session: Session, project_id: str, user_id: str) -> dict[str, bool]:
    rows = session.exec(select(PermissionOverride).where(
        PermissionOverride.project_id == project_id, PermissionOverride.user_id == user_id)).all()
    return {r.permission: r.granted for r in rows}


def project_by_slug(session: Session, slug: str, *, for_update: bool = False) -> Project | None:
    query = select(Project).where(Project.slug == slug)
    if for_update:
        query = query.with_for_update()
    return session.exec(query).first()


def access_for(session: Session, slug: str, principal: Principal, *,
               permission: str | None = None, for_update: bool = False) -> Access:
    """Resolve the signed-in caller in project `slug`; 404 unless a member, 403 without
    `permission`."""
    project = project_by_slug(session, slug, for_update=for_update)
    member = None
    if project is not None:
        member = session.get(Member, (project.id, principal.user_id))
    if project is None or member is None:
        raise errors.NotFound("Project not found")
    access = Access(project=project, user_id=principal.user_id, role=member.role,
                    permissions=effective_permissions(
                        member.role, overrides_of(session, project.id, principal.user_id)))
    if permission is not None:
        access.require(permission)
    return access


def api_key_hash(key: str | None) -> str:
    """The stored form of an SDK's API key; 401 for a missing or malformed key."""
    if not key:
        raise errors.Unauthorized("Missing API key: send it as X-API-Key")
    if not apikeys.is_well_formed(key):
        raise errors.Unauthorized("Invalid API key")
    return apikeys.hash_api_key(key)


def project_for_api_key(session: Session, key: str | None) -> Project:
    """The project an SDK's API key belongs to; 401 for a missing, malformed or unknown key."""
    project = session.exec(select(Project).where(Project.api_key_hash == api_key_hash(key))).first()
    if project is None:
        raise errors.Unauthorized("Invalid API key")
    return project
