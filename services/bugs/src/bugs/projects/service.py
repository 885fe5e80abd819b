"""Use cases on projects and their API keys."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bugnet_common import apikeys, errors
from bugnet_common.auth import Principal
from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects

from ..access import ROLE_DEFAULTS
from ..events import emit
from ..models import Member, Project, Tracker, UserRef
from ..views import PROJECT_SETTINGS_DEFAULTS
from .schemas import ProjectIn


@dataclass(frozen=True)
class Created:
    project: Project
    api_key: str  # shown this once


def slugify(name: str) -> str:
    """A slug from a name: ASCII lowercase, digits and single hyphens, 3-64 characters."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:64].strip("-")
    return slug if len(slug) >= 3 else (slug + "-project" if slug else "project")


def _free_slug(session: Session, base: str) -> str:
    taken = set(session.exec(select(Project.slug).where(
        col(Project.slug).like(f"{base[:56]}%"))).all())
    if base not in taken:
        return base
    for n in range(2, 10_000):
        candidate = f"{base[:60 - len(str(n))]}-{n}"
        if candidate not in taken:
            return candidate
    return f"{base[:27]}-{uuid.uuid4().hex[:8]}"


def ensure_user(session: Session, principal: Principal) -> None:
    """Make sure the read model knows the caller, before auth's event has arrived."""
    if session.get(UserRef, principal.user_id) is None:
        session.add(UserRef(id=principal.user_id, email=principal.email))


def create_project(*, session: Session, principal: Principal, data: ProjectIn) -> Created:
    """Create a project owned by the caller, with a fresh API key."""
    if data.slug is not None:
        if session.exec(select(Project.id).where(Project.slug == data.slug)).first():
            raise errors.Conflict(f"The slug '{data.slug}' is taken")
        slug = data.slug
    else:
        slug = _free_slug(session, slugify(data.name))
    key = apikeys.generate_api_key()
    project = Project(id=str(uuid.uuid4()), slug=slug, name=data.name,
                      description=data.description, website=data.website,
                      settings=dict(PROJECT_SETTINGS_DEFAULTS),
                      api_key_hash=apikeys.hash_api_key(key), api_key_last4=key[-4:],
                      created_by=principal.user_id)
    ensure_user(session, principal)
    session.add(project)
    session.flush()
    session.add(Member(project_id=project.id, user_id=principal.user_id, role="owner"))
    session.add(Tracker(project_id=project.id))
    emit(session, subjects.PROJECT_CREATED, ev.ProjectChanged(
        project_id=project.id, slug=project.slug, name=project.name,
        api_key_hash=project.api_key_hash, owner_id=principal.user_id,
        settings=dict(project.settings)))
    emit(session, subjects.MEMBER_ADDED, ev.MemberChanged(
        project_id=project.id, user_id=principal.user_id, role="owner",
        permissions=sorted(ROLE_DEFAULTS["owner"])))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise errors.Conflict(f"The slug '{slug}' is taken") from None
    return Created(project=project, api_key=key)


def list_projects(*, session: Session, user_id: str) -> list[tuple[Project, str]]:
    """The caller's projects with their role, newest first."""
    rows = session.exec(select(Project, Member.role).join(Member, col(Member.project_id) == Project.id)
                        .where(Member.user_id == user_id)
                        .order_by(col(Project.created_at).desc(), col(Project.id))).all()
    return [(p, role) for p, role in rows]
