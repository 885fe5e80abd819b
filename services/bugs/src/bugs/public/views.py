"""Response shapes of the public tracker, changelogs and branding.

Public shapes are allow-lists: each field a player may see is named here, so a column added
to bugs later stays private until someone lists it. They never carry an email, a user id, a
priority, an assignee, labels, device details or anything internal (fingerprints,
regression flags, internal comments).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NotRequired, cast

import sqlalchemy as sa
from sqlmodel import Session, col, select
from typing_extensions import TypedDict

from bugnet_common.bus.events import isoformat
from bugnet_common.openapi import Timestamp, Uuid

from ..enums import Category, Status
from ..models import Branding, Bug, Changelog, Comment, Project, Tracker, UserRef, Vote
from ..views import DELETED_USER, iso, users_by_id


class TrackerOut(TypedDict):
    """A project's public tracker settings."""

    enabled: bool
    allow_search: bool
    allow_voting: bool
    allow_submissions: bool
    show_categories: bool
    title: str | None
    description: str | None
    updated_at: Timestamp


class PublicTrackerOut(TypedDict):
    """What a tracker page needs to draw itself (which controls to offer)."""

    name: str
    slug: str
    title: str | None
    description: str | None
    allow_search: bool
    allow_voting: bool
    allow_submissions: bool
    show_categories: bool


class BrandingOut(TypedDict):
    """A project's public look; every value is null until set."""

    name: str
    logo_url: str | None
    primary_color: str | None
    accent_color: str | None


class PublicBugOut(TypedDict):
    """A bug as players see it: no email, assignee, priority, labels or device details;
    `category` only when the tracker shows categories; `voted`: the caller's vote."""

    id: Uuid
    number: int
    title: str
    description: str
    status: Status
    category: NotRequired[Category]
    steps: str
    expected: str
    actual: str
    platform: str | None
    game_version: str | None
    votes: int
    voted: bool
    created_at: Timestamp
    updated_at: Timestamp
    resolved_at: Timestamp | None


class CommentAuthorOut(TypedDict):
    display_name: str | None


class PublicCommentOut(TypedDict):
    """A non-internal comment; the author by display name only."""

    id: Uuid
    body: str
    author: CommentAuthorOut
    created_at: Timestamp


class PublicBugDetailOut(PublicBugOut):
    """A public bug with its non-internal comments, oldest first."""

    comments: list[PublicCommentOut]


class ChangelogBugOut(TypedDict):
    """A bug a changelog entry names, as members see it."""

    id: Uuid
    number: int
    title: str
    status: Status
    is_public: bool


class ChangelogOut(TypedDict):
    """A changelog entry as members see it; linked bugs that were deleted are left out."""

    id: Uuid
    version: str
    title: str
    body: str
    bug_ids: list[Uuid]
    bugs: list[ChangelogBugOut]
    published: bool
    published_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp


class PublicChangelogBug(TypedDict):
    """A published bug a changelog entry names."""

    id: Uuid
    number: int
    title: str
    status: Status


class UnpublishedChangelogBug(TypedDict):
    """A bug the team has not published: its number and status only ("#42, fixed")."""

    number: int
    status: Status


class PublicChangelogOut(TypedDict):
    """A published changelog entry as players see it."""

    id: Uuid
    version: str
    title: str
    body: str
    bugs: list[PublicChangelogBug | UnpublishedChangelogBug]
    published_at: Timestamp | None


def tracker_out(tracker: Tracker) -> TrackerOut:
    return TrackerOut(
        enabled=tracker.enabled, allow_search=tracker.allow_search,
        allow_voting=tracker.allow_voting, allow_submissions=tracker.allow_submissions,
        show_categories=tracker.show_categories, title=tracker.title,
        description=tracker.description, updated_at=isoformat(tracker.updated_at),
    )


def public_tracker_out(project: Project, tracker: Tracker) -> PublicTrackerOut:
    """What a tracker page needs to draw itself (which controls to offer)."""
    return PublicTrackerOut(
        name=project.name, slug=project.slug, title=tracker.title,
        description=tracker.description, allow_search=tracker.allow_search,
        allow_voting=tracker.allow_voting, allow_submissions=tracker.allow_submissions,
        show_categories=tracker.show_categories,
    )


def branding_out(project: Project, branding: Branding | None) -> BrandingOut:
    return BrandingOut(
        name=project.name,
        logo_url=branding.logo_url if branding else None,
        primary_color=branding.primary_color if branding else None,
        accent_color=branding.accent_color if branding else None,
    )


def public_bug(bug: Bug, *, tracker: Tracker, voted: bool) -> PublicBugOut:
    """A bug as players see it; `category` only when the tracker shows categories."""
    out = PublicBugOut(
        id=bug.id, number=bug.number, title=bug.title, description=bug.description,
        status=cast(Status, bug.status),
        steps=bug.steps, expected=bug.expected, actual=bug.actual,
        platform=bug.platform, game_version=bug.game_version,
        votes=bug.votes, voted=voted,
        created_at=isoformat(bug.created_at), updated_at=isoformat(bug.updated_at),
        resolved_at=iso(bug.resolved_at),
    )
    if tracker.show_categories:
        out["category"] = cast(Category, bug.category)
    return out


def voted_ids(session: Session, bug_ids: Sequence[str], voter_key: str) -> set[str]:
    if not bug_ids:
        return set()
    return set(session.exec(select(Vote.bug_id).where(
        col(Vote.bug_id).in_(bug_ids), Vote.voter_key == voter_key)).all())


def public_bugs(session: Session, bugs: Sequence[Bug], *, tracker: Tracker,
                voter_key: str) -> list[PublicBugOut]:
    """Several bugs, with the caller's own votes fetched in one query."""
    mine = voted_ids(session, [b.id for b in bugs], voter_key)
    return [public_bug(b, tracker=tracker, voted=b.id in mine) for b in bugs]


def author_name(author_id: str | None, users: dict[str, UserRef]) -> str | None:
    """A commenter's display name; a deleted account (or one anonymized away) reads
    "Deleted user"; a name not yet in the read model is null."""
    if author_id is None:
        return DELETED_USER
    user = users.get(author_id)
    if user is None:
        return None
    if user.deleted:
        return DELETED_USER
    return user.display_name or None


def public_comments(session: Session, bug: Bug) -> list[PublicCommentOut]:
    """The bug's non-internal comments, oldest first; the author by display name only."""
    comments = session.exec(select(Comment).where(Comment.bug_id == bug.id,
                                                  sa.not_(col(Comment.internal)))
                            .order_by(col(Comment.created_at), col(Comment.id))).all()
    users = users_by_id(session, [c.author_id for c in comments])
    return [PublicCommentOut(id=c.id, body=c.body,
                             author=CommentAuthorOut(display_name=author_name(c.author_id, users)),
                             created_at=isoformat(c.created_at)) for c in comments]


def public_bug_detail(session: Session, bug: Bug, *, tracker: Tracker,
                      voter_key: str) -> PublicBugDetailOut:
    voted = bool(voted_ids(session, [bug.id], voter_key))
    return PublicBugDetailOut(**public_bug(bug, tracker=tracker, voted=voted),
                              comments=public_comments(session, bug))


def _linked_bugs(session: Session, entries: Sequence[Changelog]) -> dict[str, Bug]:
    ids = {bug_id for entry in entries for bug_id in entry.bug_ids or []}
    if not ids:
        return {}
    # Scoped to the entries' project: a stored id can only resolve to a bug of that project.
    project_ids = {entry.project_id for entry in entries}
    rows = session.exec(select(Bug).where(col(Bug.id).in_(ids),
                                          col(Bug.project_id).in_(project_ids))).all()
    return {b.id: b for b in rows}


def _member_bug_brief(bug: Bug) -> ChangelogBugOut:
    return ChangelogBugOut(id=bug.id, number=bug.number, title=bug.title,
                           status=cast(Status, bug.status), is_public=bug.is_public)


def _public_bug_brief(bug: Bug) -> PublicChangelogBug | UnpublishedChangelogBug:
    # A bug the team has not published shows as its number and status only ("#42, fixed").
    status = cast(Status, bug.status)
    if bug.is_public:
        return PublicChangelogBug(id=bug.id, number=bug.number, title=bug.title, status=status)
    return UnpublishedChangelogBug(number=bug.number, status=status)


def changelogs_out(session: Session, entries: Sequence[Changelog]) -> list[ChangelogOut]:
    """Changelog entries as members see them; linked bugs that were deleted are left out."""
    bugs = _linked_bugs(session, entries)
    return [ChangelogOut(
        id=e.id, version=e.version, title=e.title, body=e.body,
        bug_ids=[b for b in e.bug_ids or [] if b in bugs],
        bugs=[_member_bug_brief(bugs[b]) for b in e.bug_ids or [] if b in bugs],
        published=e.published, published_at=iso(e.published_at),
        created_at=isoformat(e.created_at), updated_at=isoformat(e.updated_at),
    ) for e in entries]


def public_changelogs(session: Session, entries: Sequence[Changelog]) -> list[PublicChangelogOut]:
    """Published entries as players see them; linked bugs as public briefs."""
    bugs = _linked_bugs(session, entries)
    return [PublicChangelogOut(
        id=e.id, version=e.version, title=e.title, body=e.body,
        bugs=[_public_bug_brief(bugs[b]) for b in e.bug_ids or [] if b in bugs],
        published_at=iso(e.published_at),
    ) for e in entries]
