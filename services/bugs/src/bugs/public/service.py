"""Use cases of the public tracker, changelogs and branding (spec §5).

Invariants and decisions:
- While a project's tracker is disabled, every public route answers exactly as for a project
  that does not exist (404 "Project not found"): the public pages never leak existence.
- Only bugs with `is_public` are shown, as allow-listed public views (`public/views.py`);
  only comments that are not `internal`. A player's submission is stored with
  `is_public = False`: it appears on the tracker once the team has triaged and published it.
- `trackers.enabled` is the switch; the project's `settings.public_tracker` mirrors it, and
  `sync_public_tracker` keeps the two equal whichever side a request changes.
- Public `search` matches title, description, steps and non-internal comments (never
  internal comments: a match would reveal their content). With `search` and no `sort`,
  results are ranked by relevance, title matches first. On a tracker with search turned off,
  `search` is refused with 400; so is `category` on a tracker that hides categories.
- Voting is one vote per voter key (a `votes` row; `bugs.votes` counts them). Voting again
  is harmless and answers the same count. Votes are not bug changes: no activity, no event.
- Changelogs link bugs of their own project only; `published_at` is set the first time an
  entry is published and kept through later unpublish/publish.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Session, col, select

from bugnet_common import errors
from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects
from bugnet_common.bus.events import utcnow
from bugnet_common.web import Page

from ..events import emit
from ..models import Branding, Bug, Changelog, Comment, Member, Project, Tracker
from ..reports.schemas import BugIn
from ..reports.service import cast_vote, new_bug
from ..views import project_settings
from .schemas import (
    BrandingIn,
    ChangelogIn,
    ChangelogPatch,
    PublicBugFilters,
    PublicBugIn,
    TrackerIn,
)

PROJECT_NOT_FOUND = "Project not found"
MAX_SEARCH_TERMS = 8

Row = TypeVar("Row", Tracker, Branding)


@dataclass(frozen=True)
class PublicProject:
    """A project whose tracker is enabled, as a public route sees it."""

    project: Project
    tracker: Tracker


def _uuid(value: str) -> bool:
    try:
        return len(value) == 36 and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _own_row(session: Session, model: type[Row], project_id: str, *,
             for_update: bool = False) -> Row:
    """The project's one settings row of `model`, created with defaults if missing (a
    concurrent creator is absorbed by ON CONFLICT, not turned into a 500)."""
    query = select(model).where(model.project_id == project_id)
    if for_update:  # locked, and read again: an earlier read this request may be stale
        query = query.with_for_update().execution_options(populate_existing=True)
    row = session.exec(query).first()
    if row is not None:
        return row
    session.execute(pg_insert(model).values(project_id=project_id, updated_at=utcnow())
                    .on_conflict_do_nothing())
    return session.exec(query).one()


# ---- tracker settings ------------------------------------------------------------------------

def get_tracker(*, session: Session, project: Project) -> Tracker:
    """The project's tracker settings."""
    return _own_row(session, Tracker, project.id)


def sync_public_tracker(*, session: Session, project: Project, enabled: bool) -> bool:
    """Stage `enabled` on the tracker row and the project's `settings.public_tracker` (no
    commit, no event); True when the project's settings changed, so the caller emits
    `project_updated`. The projects area calls this when a PATCH changes the setting."""
    return _sync(session, project, _own_row(session, Tracker, project.id, for_update=True),
                 enabled)


def _sync(session: Session, project: Project, tracker: Tracker, enabled: bool) -> bool:
    if tracker.enabled != enabled:
        tracker.enabled = enabled
        tracker.updated_at = utcnow()
        session.add(tracker)
    settings = project_settings(project)
    if settings.get("public_tracker") == enabled:
        return False
    project.settings = {**settings, "public_tracker": enabled}  # a new dict: JSONB is rewritten
    project.updated_at = utcnow()
    session.add(project)
    return True


def _owner_id(session: Session, project_id: str) -> str | None:
    return session.exec(select(Member.user_id).where(Member.project_id == project_id,
                                                     Member.role == "owner")).first()


def update_tracker(*, session: Session, project: Project, data: TrackerIn) -> Tracker:
    """Change the tracker settings the body names; the others keep their values."""
    tracker = _own_row(session, Tracker, project.id, for_update=True)
    sent = data.model_fields_set
    for name in ("allow_search", "allow_voting", "allow_submissions", "show_categories"):
        if name in sent:
            setattr(tracker, name, getattr(data, name))
    for name in ("title", "description"):
        if name in sent:
            setattr(tracker, name, getattr(data, name) or None)  # "" clears, like null
    tracker.updated_at = utcnow()
    session.add(tracker)
    if data.enabled is not None and _sync(session, project, tracker, data.enabled):
        emit(session, subjects.PROJECT_UPDATED, ev.ProjectChanged(
            project_id=project.id, slug=project.slug, name=project.name,
            api_key_hash=project.api_key_hash, owner_id=_owner_id(session, project.id),
            settings=project_settings(project), changes=["settings"]))
    session.commit()
    return tracker


def public_project(*, session: Session, slug: str) -> PublicProject:
    """The project behind a public route: 404 unless it exists AND its tracker is enabled."""
    row = session.exec(select(Project, Tracker).join(Tracker, col(Tracker.project_id) == Project.id)
                       .where(Project.slug == slug, col(Tracker.enabled))).first()
    if row is None:
        raise errors.NotFound(PROJECT_NOT_FOUND)
    return PublicProject(project=row[0], tracker=row[1])


# ---- public bugs -----------------------------------------------------------------------------

def _public_bug(session: Session, project: Project, bug_id: str) -> Bug:
    """A public bug of `project`; anything else (not a UUID, another project's, not public)
    is the same 404."""
    bug = None
    if _uuid(bug_id):
        bug = session.exec(select(Bug).where(Bug.id == bug_id.lower(),
                                             Bug.project_id == project.id,
                                             col(Bug.is_public))).first()
    if bug is None:
        raise errors.NotFound("Bug not found")
    return bug


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _ilike(column: Any, text: str) -> sa.ColumnElement[bool]:
    return col(column).ilike(_like(text), escape="\\")  # type: ignore[no-any-return]


def _public_match(term: str) -> sa.ColumnElement[bool]:
    """The bug shows `term` (any case, part of a word) where players can read it."""
    in_public_comment = select(Comment.id).where(
        Comment.bug_id == Bug.id, sa.not_(col(Comment.internal)),
        _ilike(Comment.body, term)).exists()
    return sa.or_(_ilike(Bug.title, term), _ilike(Bug.description, term),
                  _ilike(Bug.steps, term), in_public_comment)


def _relevance(query: str, terms: Sequence[str]) -> sa.ColumnElement[float]:
    """Higher for the whole query in the title, then for each term in the title, then for the
    whole query in the description; trigram word similarity to the title orders the rest."""
    per_term = 2.0 / len(terms)
    score: sa.ColumnElement[float] = (
        sa.case((_ilike(Bug.title, query), 4.0), else_=0.0)
        + sa.case((_ilike(Bug.description, query), 1.0), else_=0.0)
        + sa.func.word_similarity(query.lower(), sa.func.lower(Bug.title)))
    for term in terms:
        score = score + sa.case((_ilike(Bug.title, term), per_term), else_=0.0)
    return score


_SORTS: dict[str, tuple[sa.ColumnElement[Any], ...]] = {
    "newest": (col(Bug.number).desc(),),
    "oldest": (col(Bug.number).asc(),),
    "votes": (col(Bug.votes).desc(), col(Bug.number).desc()),
    "updated": (col(Bug.updated_at).desc(), col(Bug.number).desc()),
}


def list_public_bugs(*, session: Session, where: PublicProject, filters: PublicBugFilters,
                     page: Page) -> tuple[list[Bug], int]:
    """One page of the project's public bugs and their total."""
    tracker = where.tracker
    conditions: list[sa.ColumnElement[bool]] = [
        col(Bug.project_id) == where.project.id, col(Bug.is_public) == sa.true()]
    if filters.status is not None:
        conditions.append(col(Bug.status) == filters.status)
    if filters.category is not None:
        if not tracker.show_categories:
            raise errors.ValidationFailed(
                "Invalid 'category': this tracker does not show categories",
                details={"category": "this tracker does not show categories"})
        conditions.append(col(Bug.category) == filters.category)
    order: tuple[sa.ColumnElement[Any], ...] = _SORTS[filters.sort or "newest"]
    query_text = filters.search or ""
    if query_text:
        if not tracker.allow_search:
            raise errors.ValidationFailed(
                "Invalid 'search': search is turned off on this tracker",
                details={"search": "search is turned off on this tracker"})
        terms = list(dict.fromkeys(query_text.lower().split()))[:MAX_SEARCH_TERMS]
        conditions.extend(_public_match(term) for term in terms)
        if filters.sort is None:
            order = (_relevance(query_text, terms).desc(), col(Bug.number).desc())
    total = session.exec(select(sa.func.count()).select_from(Bug).where(*conditions)).one()
    bugs = session.exec(select(Bug).where(*conditions).order_by(*order)
                        .offset(page.offset).limit(page.limit)).all()
    return list(bugs), int(total)


def get_public_bug(*, session: Session, where: PublicProject, bug_id: str) -> Bug:
    """One public bug of the project (404 otherwise)."""
    return _public_bug(session, where.project, bug_id)


def vote(*, session: Session, where: PublicProject, bug_id: str, voter_key: str) -> Bug:
    """A player's vote for a public bug: one per client."""
    bug = _public_bug(session, where.project, bug_id)
    if not where.tracker.allow_voting:
        raise errors.Forbidden("Voting is turned off on this tracker")
    cast_vote(session=session, bug=bug, voter_key=voter_key)
    session.commit()
    return bug


def ensure_submissions_open(where: PublicProject) -> None:
    if not where.tracker.allow_submissions:
        raise errors.Forbidden("Submissions are closed on this tracker")


def submit_bug(*, session: Session, where: PublicProject, data: PublicBugIn) -> Bug:
    """File a player's report from the tracker; hidden from the tracker until published."""
    ensure_submissions_open(where)
    report = BugIn.model_validate({"title": data.title, "description": data.description,
                                   "category": data.category,
                                   "player_email": data.player_email})
    bug = new_bug(session, project=where.project, data=report, source="public",
                  reporter_user_id=None)
    session.commit()
    return bug


# ---- changelogs ------------------------------------------------------------------------------

def _checked_bug_ids(session: Session, project: Project, bug_ids: Sequence[str]) -> list[str]:
    """The ids, de-duplicated in order; 400 naming the first that is not a bug of `project`."""
    wanted = list(dict.fromkeys(bug_ids))
    if not wanted:
        return []
    found = set(session.exec(select(Bug.id).where(col(Bug.id).in_(wanted),
                                                  Bug.project_id == project.id)).all())
    for bug_id in wanted:
        if bug_id not in found:
            raise errors.ValidationFailed(
                f"Invalid 'bug_ids': {bug_id} is not a bug of this project",
                details={"bug_ids": f"{bug_id} is not a bug of this project"})
    return wanted


def list_changelogs(*, session: Session, project: Project,
                    page: Page) -> tuple[list[Changelog], int]:
    """One page of the project's changelog entries, drafts included, newest first."""
    total = session.exec(select(sa.func.count()).select_from(Changelog)
                         .where(Changelog.project_id == project.id)).one()
    rows = session.exec(select(Changelog).where(Changelog.project_id == project.id)
                        .order_by(col(Changelog.created_at).desc(), col(Changelog.id).desc())
                        .offset(page.offset).limit(page.limit)).all()
    return list(rows), int(total)


def get_changelog(*, session: Session, project: Project, changelog_id: str,
                  for_update: bool = False) -> Changelog:
    """One changelog entry of the project; 404 for a malformed id or another project's."""
    entry = None
    if _uuid(changelog_id):
        query = select(Changelog).where(Changelog.id == changelog_id.lower(),
                                        Changelog.project_id == project.id)
        if for_update:  # locked, and read again over what this request may have loaded
            query = query.with_for_update().execution_options(populate_existing=True)
        entry = session.exec(query).first()
    if entry is None:
        raise errors.NotFound("Changelog entry not found")
    return entry


def create_changelog(*, session: Session, project: Project, data: ChangelogIn) -> Changelog:
    """Write a changelog entry, published at once or as a draft."""
    now = utcnow()
    entry = Changelog(id=str(uuid.uuid4()), project_id=project.id, version=data.version,
                      title=data.title, body=data.body,
                      bug_ids=_checked_bug_ids(session, project, data.bug_ids),
                      published=data.published, published_at=now if data.published else None,
                      created_at=now, updated_at=now)
    session.add(entry)
    session.commit()
    return entry


def update_changelog(*, session: Session, project: Project, changelog_id: str,
                     data: ChangelogPatch) -> Changelog:
    """Change the fields the body names; `bug_ids` replaces the linked bugs."""
    entry = get_changelog(session=session, project=project, changelog_id=changelog_id,
                          for_update=True)
    if data.bug_ids is not None:
        entry.bug_ids = _checked_bug_ids(session, project, data.bug_ids)
    if data.version is not None:
        entry.version = data.version
    if data.title is not None:
        entry.title = data.title
    if data.body is not None:
        entry.body = data.body
    if data.published is not None:
        entry.published = data.published
        if data.published and entry.published_at is None:
            entry.published_at = utcnow()
    entry.updated_at = utcnow()
    session.add(entry)
    session.commit()
    return entry


def delete_changelog(*, session: Session, project: Project, changelog_id: str) -> Changelog:
    """Delete a changelog entry; its bugs are untouched."""
    entry = get_changelog(session=session, project=project, changelog_id=changelog_id,
                          for_update=True)
    session.delete(entry)
    session.commit()
    return entry


def list_public_changelogs(*, session: Session, where: PublicProject,
                           page: Page) -> tuple[list[Changelog], int]:
    """One page of published entries, the latest published first."""
    mine = (Changelog.project_id == where.project.id, col(Changelog.published))
    total = session.exec(select(sa.func.count()).select_from(Changelog).where(*mine)).one()
    rows = session.exec(select(Changelog).where(*mine)
                        .order_by(col(Changelog.published_at).desc().nulls_last(),
                                  col(Changelog.created_at).desc(), col(Changelog.id).desc())
                        .offset(page.offset).limit(page.limit)).all()
    return list(rows), int(total)


# ---- branding --------------------------------------------------------------------------------

def get_branding(*, session: Session, project: Project) -> Branding | None:
    """The project's branding; None until first set (every value then reads null)."""
    return session.get(Branding, project.id)


def update_branding(*, session: Session, project: Project, data: BrandingIn) -> Branding:
    """Change the branding values the body names; `null` clears one."""
    branding = _own_row(session, Branding, project.id, for_update=True)
    for name in ("logo_url", "primary_color", "accent_color"):
        if name in data.model_fields_set:
            setattr(branding, name, getattr(data, name))
    branding.updated_at = utcnow()
    session.add(branding)
    session.commit()
    return branding
