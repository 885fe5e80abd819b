"""Response shapes of projects and bugs, shared by every area that returns them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from bugnet_common.bus.events import isoformat

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


def project_out(project: Project, role: str | None) -> dict[str, Any]:
    return {
        "id": project.id, "name": project.name, "slug": project.slug,
        "description": project.description, "website": project.website,
        "created_at": iso(project.created_at), "role": role,
        "settings": project_settings(project),
    }


def users_by_id(session: Session, ids: Iterable[str | None]) -> dict[str, UserRef]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return {u.id: u for u in session.exec(select(UserRef).where(col(UserRef.id).in_(wanted)))}


def user_brief(user_id: str | None, users: dict[str, UserRef]) -> dict[str, Any] | None:
    """A person on a bug; a deleted account shows as "Deleted user" with no id."""
    if user_id is None:
        return None
    user = users.get(user_id)
    if user is None:  # not in the read model yet
        return {"id": user_id, "display_name": None, "avatar": None}
    if user.deleted:
        return {"id": None, "display_name": DELETED_USER, "avatar": None}
    return {"id": user.id, "display_name": user.display_name, "avatar": user.avatar}


def labels_by_bug(session: Session, bug_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {b: [] for b in bug_ids}
    if not bug_ids:
        return out
    rows = session.exec(select(BugLabel.bug_id, Label).join(Label, col(Label.id) == BugLabel.label_id)
                        .where(col(BugLabel.bug_id).in_(bug_ids)).order_by(col(Label.name))).all()
    for bug_id, label in rows:
        out[bug_id].append({"id": label.id, "name": label.name, "color": label.color})
    return out


def reporter_out(bug: Bug, users: dict[str, UserRef]) -> dict[str, Any] | None:
    if bug.reporter_user_id:
        return {"type": "user", **(user_brief(bug.reporter_user_id, users) or {})}
    if bug.reporter_name or bug.reporter_steam_id:
        return {"type": "player", "name": bug.reporter_name, "steam_id": bug.reporter_steam_id}
    return None


def bug_out(bug: Bug, *, users: dict[str, UserRef], labels: list[dict[str, Any]],
            member: bool = True) -> dict[str, Any]:
    """A bug as the API shows it; `player_email` only to members."""
    out: dict[str, Any] = {
        "id": bug.id, "number": bug.number, "title": bug.title, "description": bug.description,
        "category": bug.category, "priority": bug.priority, "status": bug.status,
        "steps": bug.steps, "expected": bug.expected, "actual": bug.actual,
        "platform": bug.platform, "game_version": bug.game_version, "os_info": bug.os_info,
        "device_info": bug.device_info,
        "reporter": reporter_out(bug, users),
        "assignee": user_brief(bug.assignee_id, users),
        "labels": labels, "votes": bug.votes, "occurrences": bug.occurrences,
        "first_seen_version": bug.first_seen_version, "last_seen_version": bug.last_seen_version,
        "platforms": list(bug.platforms or []), "versions": list(bug.versions or []),
        "is_regression": bug.is_regression, "source": bug.source, "is_public": bug.is_public,
        "git_issue_url": bug.git_issue_url, "created_at": iso(bug.created_at),
        "updated_at": iso(bug.updated_at), "resolved_at": iso(bug.resolved_at),
        "last_seen_at": iso(bug.last_seen_at),
    }
    if member:
        out["player_email"] = bug.player_email
    return out


def bugs_out(session: Session, bugs: Sequence[Bug], *, member: bool = True) -> list[dict[str, Any]]:
    """Several bugs with their people and labels fetched in two queries, not 2N."""
    users = users_by_id(session, [b.assignee_id for b in bugs] + [b.reporter_user_id for b in bugs])
    labels = labels_by_bug(session, [b.id for b in bugs])
    return [bug_out(b, users=users, labels=labels[b.id], member=member) for b in bugs]
