"""Response shapes of the reports area beyond the bug itself: comments, activity, attachments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..models import Activity, Attachment, Comment, Project, UserRef
from ..views import bug_out, iso, user_brief
from .service import BugDetail


def actor_out(entry: Activity, users: dict[str, UserRef]) -> dict[str, Any] | None:
    """Who did it: a user (or "Deleted user"), a player by name, or nobody (the system)."""
    if entry.actor_id:
        return user_brief(entry.actor_id, users)
    if entry.actor_name:
        return {"id": None, "display_name": entry.actor_name, "avatar": None}
    return None


def activity_out(entry: Activity, users: dict[str, UserRef]) -> dict[str, Any]:
    return {"id": entry.id, "actor": actor_out(entry, users), "action": entry.action,
            "field": entry.field, "from": entry.from_value, "to": entry.to_value,
            "created_at": iso(entry.created_at)}


def comment_out(comment: Comment, users: dict[str, UserRef]) -> dict[str, Any]:
    return {"id": comment.id, "body": comment.body, "internal": comment.internal,
            "author": user_brief(comment.author_id, users), "created_at": iso(comment.created_at)}


def attachment_out(attachment: Attachment, project: Project) -> dict[str, Any]:
    return {"id": attachment.id, "kind": attachment.kind, "content_type": attachment.content_type,
            "size": attachment.size, "filename": attachment.filename,
            "duration_sec": attachment.duration_sec, "created_at": iso(attachment.created_at),
            "url": f"/api/projects/{project.slug}/bugs/{attachment.bug_id}"
                   f"/attachments/{attachment.id}"}


def bug_detail_out(detail: BugDetail, project: Project) -> dict[str, Any]:
    """A bug with everything on it, as GET /bugs/{id} answers."""
    users = detail.users
    out = bug_out(detail.bug, users=users, labels=detail.labels)
    out["comments"] = [comment_out(c, users) for c in detail.comments]
    out["activity"] = [activity_out(a, users) for a in detail.activity]
    out["attachments"] = [attachment_out(a, project) for a in detail.attachments]
    return out


def activities_out(entries: Sequence[Activity], users: dict[str, UserRef]) -> list[dict[str, Any]]:
    return [activity_out(a, users) for a in entries]
