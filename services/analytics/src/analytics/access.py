"""Who may see a project's analytics, and which project an SDK's API key belongs to.

Answered from the read models (`handlers.py` keeps them). As in the bugs service: a caller
who is not a member gets 404, never 403 (a project's existence must not leak); a member
without the permission gets 403. Permissions are the effective ones the bugs service
computed (role defaults plus overrides), carried by its member events.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from bugnet_common import apikeys, errors
from bugnet_common.auth import Principal

from .models import ApiKey, Member, Project


@dataclass(frozen=True)
class Access:
    """The caller's standing in one project."""

    project: Project
    user_id: str
    role: str
    permissions: frozenset[str]

    def can(self, permission: str) -> bool:
        return permission in self.permissions


def member_access(session: Session, principal: Principal, slug: str,
                  permission: str | None = None) -> Access:
    """The signed-in caller's standing in project `slug`: 404 unless a member, 403 without
    `permission`."""
    project = session.exec(select(Project).where(Project.slug == slug)).first()
    member = None if project is None else session.get(Member, (project.id, principal.user_id))
    if project is None or member is None or member.role is None:
        raise errors.NotFound("Project not found")
    access = Access(project=project, user_id=principal.user_id, role=member.role,
                    permissions=frozenset(member.permissions or ()))
    if permission is not None and permission not in access.permissions:
        raise errors.Forbidden(f"You need the '{permission}' permission to do this")
    return access


def access_for(session: Session, principal: Principal, slug: str,
               permission: str | None = None) -> Project:
    """Project `slug` if the caller may act in it with `permission`; NotFound (404) for a
    non-member or an unknown project, Forbidden (403) for a member lacking `permission`."""
    return member_access(session, principal, slug, permission).project


def api_key_hash(key: str | None) -> str:
    """The stored form of an SDK's API key; 401 for a missing or malformed key."""
    if not key:
        raise errors.Unauthorized("Missing API key: send it as X-API-Key")
    if not apikeys.is_well_formed(key):
        raise errors.Unauthorized("Invalid API key")
    return apikeys.hash_api_key(key)


def project_id_for_key_hash(session: Session, key_hash: str) -> str | None:
    """The project whose current key has this hash; None for an unknown or replaced key."""
    return session.exec(select(ApiKey.project_id).where(
        ApiKey.key_hash == key_hash, col(ApiKey.superseded_at).is_(None))).first()


def project_for_api_key(session: Session, key: str | None) -> Project:
    """The project an SDK's API key belongs to; 401 for a missing, malformed, unknown or
    replaced key."""
    project_id = project_id_for_key_hash(session, api_key_hash(key))
    project = None if project_id is None else session.get(Project, project_id)
    if project is None:
        raise errors.Unauthorized("Invalid API key")
    return project
