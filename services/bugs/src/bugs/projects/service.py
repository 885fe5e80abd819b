"""Use cases on projects and their API keys."""

from __future__ import annotations

import logging
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bugnet_common import apikeys, errors
from bugnet_common.auth import Principal
from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects
from bugnet_common.bus.events import utcnow
from bugnet_common.web import Page

from ..access import ROLE_DEFAULTS
from ..events import emit
from ..models import Attachment, Member, Project, Tracker, UserRef
from ..public.service import sync_public_tracker
from ..sdk.storage import AttachmentStorage
from ..views import PROJECT_SETTINGS_DEFAULTS, project_settings
from .schemas import ProjectIn, ProjectUpdate

log = logging.getLogger(__name__)

# A read-model row made from a token rather than an auth event: any event about the user is
# newer than it (see handlers: an event older than the row it would change is skipped).
PLACEHOLDER_TIME = datetime(1970, 1, 1, tzinfo=UTC)


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
    # ON CONFLICT: the user_registered handler may insert the same row concurrently.
    session.exec(pg_insert(UserRef.__table__).values(  # type: ignore[attr-defined]
        id=principal.user_id, email=principal.email.lower(), display_name="", deleted=False,
        updated_at=PLACEHOLDER_TIME).on_conflict_do_nothing(index_elements=["id"]))


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


def list_projects(*, session: Session, user_id: str,
                  page: Page) -> tuple[list[tuple[Project, str]], int]:
    """One page of the caller's projects with their role, newest first; and the total."""
    mine = select(Project, Member.role).join(Member, col(Member.project_id) == Project.id) \
        .where(Member.user_id == user_id)
    total = session.exec(select(sa.func.count()).select_from(Member)
                         .where(Member.user_id == user_id)).one()
    rows = session.exec(mine.order_by(col(Project.created_at).desc(), col(Project.id).desc())
                        .offset(page.offset).limit(page.limit)).all()
    return [(p, role) for p, role in rows], int(total)


def owner_of(session: Session, project_id: str) -> str | None:
    return session.exec(select(Member.user_id).where(
        Member.project_id == project_id, Member.role == "owner")).first()


def update_project(*, session: Session, project: Project, data: ProjectUpdate,
                   actor_id: str) -> Project:
    """Change a project's name, description, website or SDK settings; the slug never changes."""
    if data.slug is not None and data.slug != project.slug:
        raise errors.ValidationFailed("Invalid 'slug': a project's slug cannot be changed",
                                      details={"slug": "cannot be changed"})
    changed: list[str] = []
    for name, value in data.changes().items():
        if name == "settings":
            before = project_settings(project)
            if "public_tracker" in value:
                # The tracker row is the public pages' switch; this keeps the two equal.
                sync_public_tracker(session=session, project=project,
                                    enabled=value["public_tracker"])
            merged = {**project_settings(project), **value}
            if merged != project_settings(project):
                project.settings = merged  # a new dict, so the JSONB column is written
            if project_settings(project) != before:
                changed.append(name)
        elif getattr(project, name) != value:
            setattr(project, name, value)
            changed.append(name)
    if not changed:
        return project
    project.updated_at = utcnow()
    session.add(project)
    emit(session, subjects.PROJECT_UPDATED, ev.ProjectChanged(
        project_id=project.id, slug=project.slug, name=project.name,
        api_key_hash=project.api_key_hash, owner_id=owner_of(session, project.id),
        settings=project_settings(project), changes=changed))
    session.commit()
    return project


def delete_project(*, session: Session, project: Project, actor_id: str,
                   storage: AttachmentStorage | None = None) -> None:
    """Delete a project and, by cascade, its team, invitations, bugs, labels and pages; then
    its attachments' bytes."""
    project_id, slug = project.id, project.slug
    keys = list(session.exec(select(Attachment.storage_key)
                             .where(Attachment.project_id == project_id)))
    # The foreign keys' ON DELETE CASCADE removes everything under it in the same statement.
    session.delete(project)
    emit(session, subjects.PROJECT_DELETED, ev.ProjectDeleted(project_id=project_id, slug=slug))
    session.commit()
    if storage is not None:
        discard_files(storage, keys, project_id=project_id)


def discard_files(storage: AttachmentStorage, keys: list[str], *, project_id: str) -> None:
    """Best effort, after the commit: bytes left behind cost disk space, never correctness
    (no row points at them any more)."""
    failed = 0
    for key in keys:
        try:
            storage.delete(key)
        except Exception:
            failed += 1
    if failed:
        log.warning("attachment files of a deleted project left behind",
                    extra={"project_id": project_id, "failed": failed, "total": len(keys)})


def masked_api_key(project: Project) -> str:
    return f"{apikeys.PREFIX}…{project.api_key_last4}"


def regenerate_api_key(*, session: Session, project: Project, actor_id: str) -> str:
    """Replace the project's key; the old one stops working when this commits."""
    key = apikeys.generate_api_key()
    previous = project.api_key_hash
    project.api_key_hash = apikeys.hash_api_key(key)
    project.api_key_last4 = key[-4:]
    project.updated_at = utcnow()
    session.add(project)
    emit(session, subjects.API_KEY_ROTATED, ev.ApiKeyRotated(
        project_id=project.id, api_key_hash=project.api_key_hash, previous_hash=previous))
    session.commit()
    return key
