"""Who may do what in a project, from the members read model.

Every project route is authorized by permission, never by role name. A caller who is not a
member (or a project this service has not heard of) gets 404, never 403: a project's
existence must not leak. The permissions are the effective list the bugs service computed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from bugnet_common import errors
from bugnet_common.auth import Principal

from .models import MemberRef, ProjectRef


@dataclass(frozen=True)
class Access:
    """The caller's standing in one project."""

    project: ProjectRef
    user_id: str
    role: str
    permissions: frozenset[str]

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str) -> None:
        if permission not in self.permissions:
            raise errors.Forbidden(f"You need the '{permission}' permission to do this")


def project_by_slug(session: Session, slug: str) -> ProjectRef | None:
    return session.exec(select(ProjectRef).where(ProjectRef.slug == slug)).first()


def access_for(session: Session, principal: Principal, slug: str,
               permission: str | None = None) -> Access:
    """The signed-in caller's access to project `slug`: 404 unless a member, 403 without
    `permission` (when given)."""
    project = project_by_slug(session, slug)
    member = None if project is None else session.get(MemberRef, (project.id, principal.user_id))
    if project is None or member is None:
        raise errors.NotFound("Project not found")
    access = Access(project=project, user_id=principal.user_id, role=member.role,
                    permissions=frozenset(member.permissions))
    if permission is not None:
        access.require(permission)
    return access
