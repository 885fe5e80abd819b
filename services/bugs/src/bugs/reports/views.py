"""Response shapes of the reports area beyond the bug itself: comments, activity, attachments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, cast

from typing_extensions import TypedDict

from bugnet_common.bus.events import isoformat
from bugnet_common.openapi import Timestamp, Uuid

from ..models import Activity, Attachment, Comment, Project, UserRef
from ..views import BugOut, UserBrief, bug_out, user_brief
from .service import BugDetail

AttachmentKind = Literal["screenshot", "replay"]

# "from" is a keyword: the functional form names the fields.
ActivityOut = TypedDict("ActivityOut", {
    "id": Uuid,
    "actor": UserBrief | None,
    "action": str,
    "field": str | None,
    "from": str | None,
    "to": str | None,
    "created_at": Timestamp,
})


class CommentOut(TypedDict):
    """A comment on a bug; `internal` ones are never shown on the public tracker."""

    id: Uuid
    body: str
    internal: bool
    author: UserBrief | None
    created_at: Timestamp


class AttachmentOut(TypedDict):
    """A file on a bug (a screenshot or a session replay); `url` downloads its bytes."""

    id: Uuid
    kind: AttachmentKind
    content_type: str
    size: int
    filename: str | None
    duration_sec: float | None
    created_at: Timestamp
    url: str


class BugDetailOut(BugOut):
    """A bug with its comments (internal ones too), latest activity and attachments."""

    comments: list[CommentOut]
    activity: list[ActivityOut]
    attachments: list[AttachmentOut]


def actor_out(entry: Activity, users: dict[str, UserRef]) -> UserBrief | None:
    """Who did it: a user (or "Deleted user"), a player by name, or nobody (the system)."""
    if entry.actor_id:
        return user_brief(entry.actor_id, users)
    if entry.actor_name:
        return UserBrief(id=None, display_name=entry.actor_name, avatar=None)
    return None


def activity_out(entry: Activity, users: dict[str, UserRef]) -> ActivityOut:
    return ActivityOut({"id": entry.id, "actor": actor_out(entry, users), "action": entry.action,
                        "field": entry.field, "from": entry.from_value, "to": entry.to_value,
                        "created_at": isoformat(entry.created_at)})


def comment_out(comment: Comment, users: dict[str, UserRef]) -> CommentOut:
    return CommentOut(id=comment.id, body=comment.body, internal=comment.internal,
                      author=user_brief(comment.author_id, users),
                      created_at=isoformat(comment.created_at))


def attachment_out(attachment: Attachment, project: Project) -> AttachmentOut:
    return AttachmentOut(
        id=attachment.id, kind=cast(AttachmentKind, attachment.kind),
        content_type=attachment.content_type, size=attachment.size,
        filename=attachment.filename, duration_sec=attachment.duration_sec,
        created_at=isoformat(attachment.created_at),
        url=f"/api/projects/{project.slug}/bugs/{attachment.bug_id}/attachments/{attachment.id}")


def bug_detail_out(detail: BugDetail, project: Project) -> BugDetailOut:
    """A bug with everything on it, as GET /bugs/{id} answers."""
    users = detail.users
    return BugDetailOut(
        **bug_out(detail.bug, users=users, labels=detail.labels),
        comments=[comment_out(c, users) for c in detail.comments],
        activity=[activity_out(a, users) for a in detail.activity],
        attachments=[attachment_out(a, project) for a in detail.attachments])


def activities_out(entries: Sequence[Activity], users: dict[str, UserRef]) -> list[ActivityOut]:
    return [activity_out(a, users) for a in entries]
