"""Response shapes of projects and bugs, shared by every area that returns them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal, cast

from sqlmodel import Session, col, select
from typing_extensions import TypedDict

from bugnet_common.bus.events import isoformat
from bugnet_common.openapi import Timestamp, Uuid

from .enums import Category, Priority, Role, Source, Status
from .models import Bug, BugLabel, Label, Project, UserRef

DELETED_USER = "Deleted user"
PROJECT_SETTINGS_DEFAULTS: dict[str, bool] = {
    "screenshot_capture": True, "session_capture": False, "auto_file_errors": False,
    "public_tracker": False,
}


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else isoformat(dt)


def project_settings(project: Project) -> dict[str, bool]:
    return {**PROJECT_SETTINGS_DEFAULTS, **(project.settings or {})}


class ProjectSettingsOut(TypedDict):
    """The SDK-facing switches of a project."""

    screenshot_capture: bool
    session_capture: bool
    auto_file_errors: bool
    public_tracker: bool


class ProjectOut(TypedDict):
    """A project, with the caller's role in it."""

    id: Uuid
    name: str
    slug: str
    description: str | None
    website: str | None
    created_at: Timestamp
    role: Role
    settings: ProjectSettingsOut


def settings_out(project: Project) -> ProjectSettingsOut:
    current = project_settings(project)
    return ProjectSettingsOut(
        screenshot_capture=bool(current["screenshot_capture"]),
        session_capture=bool(current["session_capture"]),
        auto_file_errors=bool(current["auto_file_errors"]),
        public_tracker=bool(current["public_tracker"]))


def project_out(project: Project, role: str) -> ProjectOut:
    return ProjectOut(
        id=project.id, name=project.name, slug=project.slug,
        description=project.description, website=project.website,
        created_at=isoformat(project.created_at), role=cast(Role, role),
        settings=settings_out(project))


def users_by_id(session: Session, ids: Iterable[str | None]) -> dict[str, UserRef]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return {u.id: u for u in session.exec(select(UserRef).where(col(UserRef.id).in_(wanted)))}


class UserBrief(TypedDict):
    """A person as a bug, comment or invitation names them. A deleted account reads
    "Deleted user" with no id; one not known yet has an id and no name."""

    id: Uuid | None
    display_name: str | None
    avatar: str | None


def user_brief(user_id: str | None, users: dict[str, UserRef]) -> UserBrief | None:
    """A person on a bug; a deleted account shows as "Deleted user" with no id."""
    if user_id is None:
        return None
    user = users.get(user_id)
    if user is None:  # not in the read model yet
        return UserBrief(id=user_id, display_name=None, avatar=None)
    if user.deleted:
        return UserBrief(id=None, display_name=DELETED_USER, avatar=None)
    return UserBrief(id=user.id, display_name=user.display_name, avatar=user.avatar)


class LabelBrief(TypedDict):
    """A label on a bug."""

    id: Uuid
    name: str
    color: str


def labels_by_bug(session: Session, bug_ids: Sequence[str]) -> dict[str, list[LabelBrief]]:
    out: dict[str, list[LabelBrief]] = {b: [] for b in bug_ids}
    if not bug_ids:
        return out
    rows = session.exec(select(BugLabel.bug_id, Label).join(Label, col(Label.id) == BugLabel.label_id)
                        .where(col(BugLabel.bug_id).in_(bug_ids)).order_by(col(Label.name))).all()
    for bug_id, label in rows:
        out[bug_id].append(LabelBrief(id=label.id, name=label.name, color=label.color))
    return out


class UserReporter(TypedDict):
    """A bug filed by a signed-in user (a deleted one reads "Deleted user", with no id)."""

    type: Literal["user"]
    id: Uuid | None
    display_name: str | None
    avatar: str | None


class PlayerReporter(TypedDict):
    """A bug filed by a player, known by the name and Steam id the game sent."""

    type: Literal["player"]
    name: str | None
    steam_id: str | None


def reporter_out(bug: Bug, users: dict[str, UserRef]) -> UserReporter | PlayerReporter | None:
    brief = user_brief(bug.reporter_user_id, users) if bug.reporter_user_id else None
    if brief is not None:
        return UserReporter(type="user", id=brief["id"], display_name=brief["display_name"],
                            avatar=brief["avatar"])
    if bug.reporter_name or bug.reporter_steam_id:
        return PlayerReporter(type="player", name=bug.reporter_name,
                              steam_id=bug.reporter_steam_id)
    return None


class BugOut(TypedDict):
    """A bug as members see it."""

    id: Uuid
    number: int
    title: str
    description: str
    category: Category
    priority: Priority
    status: Status
    steps: str
    expected: str
    actual: str
    platform: str | None
    game_version: str | None
    os_info: str | None
    device_info: str | None
    reporter: UserReporter | PlayerReporter | None
    assignee: UserBrief | None
    labels: list[LabelBrief]
    votes: int
    occurrences: int
    first_seen_version: str | None
    last_seen_version: str | None
    platforms: list[str]
    versions: list[str]
    is_regression: bool
    source: Source
    is_public: bool
    git_issue_url: str | None
    created_at: Timestamp
    updated_at: Timestamp
    resolved_at: Timestamp | None
    last_seen_at: Timestamp | None
    player_email: str | None


def bug_out(bug: Bug, *, users: dict[str, UserRef], labels: list[LabelBrief]) -> BugOut:
    """A bug as the API shows it to members (`player_email` included)."""
    return BugOut(
        id=bug.id, number=bug.number, title=bug.title, description=bug.description,
        category=cast(Category, bug.category), priority=cast(Priority, bug.priority),
        status=cast(Status, bug.status),
        steps=bug.steps, expected=bug.expected, actual=bug.actual,
        platform=bug.platform, game_version=bug.game_version, os_info=bug.os_info,
        device_info=bug.device_info,
        reporter=reporter_out(bug, users),
        assignee=user_brief(bug.assignee_id, users),
        labels=labels, votes=bug.votes, occurrences=bug.occurrences,
        first_seen_version=bug.first_seen_version, last_seen_version=bug.last_seen_version,
        platforms=list(bug.platforms or []), versions=list(bug.versions or []),
        is_regression=bug.is_regression, source=cast(Source, bug.source),
        is_public=bug.is_public,
        git_issue_url=bug.git_issue_url, created_at=isoformat(bug.created_at),
        updated_at=isoformat(bug.updated_at), resolved_at=iso(bug.resolved_at),
        last_seen_at=iso(bug.last_seen_at),
        player_email=bug.player_email,
    )


def bugs_out(session: Session, bugs: Sequence[Bug]) -> list[BugOut]:
    """Several bugs with their people and labels fetched in two queries, not 2N."""
    users = users_by_id(session, [b.assignee_id for b in bugs] + [b.reporter_user_id for b in bugs])
    labels = labels_by_bug(session, [b.id for b in bugs])
    return [bug_out(b, users=users, labels=labels[b.id]) for b in bugs]
