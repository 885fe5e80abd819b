"""Use cases on labels: a project's labels, and labels on bugs.

Invariants: a label name is unique in its project, case-insensitively (a unique index on
lower(name)); deleting a label removes it from every bug (bug_labels cascades). Attaching or
detaching a label is a change of the bug: an activity row (field "labels") and `bug_updated`
with `changes.labels` = {from: [names], to: [names]}.
"""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select
from typing_extensions import TypedDict

from bugnet_common import errors
from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects
from bugnet_common.bus.events import isoformat, utcnow
from bugnet_common.openapi import Timestamp, Uuid
from bugnet_common.web import Page

from ..access import Access
from ..events import emit, snapshot
from ..models import Bug, BugLabel, Label, Project
from ..reports.schemas import is_uuid
from ..reports.service import find_bug, record
from .schemas import LabelIn, LabelPatch


class LabelOut(TypedDict):
    """A project's label; `color` is `#rrggbb`."""

    id: Uuid
    name: str
    color: str
    created_at: Timestamp


def label_out(label: Label) -> LabelOut:
    return LabelOut(id=label.id, name=label.name, color=label.color,
                    created_at=isoformat(label.created_at))


def find_label(session: Session, project: Project, label_id: str) -> Label:
    """The label `label_id` of `project`; 404 for a malformed id or another project's label."""
    label = None
    if is_uuid(label_id):
        label = session.exec(select(Label).where(Label.id == label_id.lower(),
                                                 Label.project_id == project.id)).first()
    if label is None:
        raise errors.NotFound("Label not found")
    return label


def _name_taken(session: Session, project: Project, name: str, *, other_than: str | None) -> bool:
    query = select(Label.id).where(Label.project_id == project.id,
                                   func.lower(Label.name) == name.lower())
    if other_than is not None:
        query = query.where(Label.id != other_than)
    return session.exec(query).first() is not None


def _commit_unique(session: Session, name: str) -> None:
    try:
        session.commit()
    except IntegrityError:  # a concurrent request took the name between check and commit
        session.rollback()
        raise errors.Conflict(f"A label named '{name}' already exists") from None


def list_labels(*, session: Session, project: Project, page: Page) -> tuple[list[Label], int]:
    """The project's labels by name (newest first among equal names)."""
    total = session.exec(select(func.count()).select_from(Label)
                         .where(Label.project_id == project.id)).one()
    rows = session.exec(select(Label).where(Label.project_id == project.id)
                        .order_by(func.lower(Label.name), col(Label.created_at).desc(),
                                  col(Label.id).desc())
                        .offset(page.offset).limit(page.limit)).all()
    return list(rows), int(total)


def create_label(*, session: Session, project: Project, data: LabelIn) -> Label:
    """A new label; 409 when the project has one of that name (in any case)."""
    if _name_taken(session, project, data.name, other_than=None):
        raise errors.Conflict(f"A label named '{data.name}' already exists")
    label = Label(id=str(uuid.uuid4()), project_id=project.id, name=data.name, color=data.color)
    session.add(label)
    _commit_unique(session, data.name)
    return label


def update_label(*, session: Session, project: Project, label_id: str, data: LabelPatch) -> Label:
    """Rename or recolor a label; 409 when the new name is taken."""
    label = find_label(session, project, label_id)
    if data.name is not None and data.name != label.name:
        if _name_taken(session, project, data.name, other_than=label.id):
            raise errors.Conflict(f"A label named '{data.name}' already exists")
        label.name = data.name
    if data.color is not None:
        label.color = data.color
    _commit_unique(session, label.name)
    return label


def delete_label(*, session: Session, project: Project, label_id: str) -> Label:
    """Delete a label; it disappears from every bug that had it."""
    label = find_label(session, project, label_id)
    session.delete(label)
    session.commit()
    return label


def _names(session: Session, bug: Bug) -> list[str]:
    return list(session.exec(select(Label.name).join(BugLabel, col(BugLabel.label_id) == Label.id)
                             .where(BugLabel.bug_id == bug.id).order_by(func.lower(Label.name))))


def _changed(session: Session, access: Access, bug: Bug, before: list[str]) -> None:
    after = _names(session, bug)
    now = utcnow()
    bug.updated_at = now
    record(session, bug_id=bug.id, actor_id=access.user_id, action="changed", field="labels",
           from_value=", ".join(before), to_value=", ".join(after), at=now)
    emit(session, subjects.BUG_UPDATED, ev.BugChanged(
        bug=snapshot(bug, access.project), changes={"labels": {"from": before, "to": after}},
        actor_id=access.user_id))


def attach_label(*, session: Session, access: Access, bug_id: str, label_id: str) -> Bug:
    """Put a label of the project on a bug; attaching it again changes nothing."""
    bug = find_bug(session, access.project, bug_id, for_update=True)
    label = find_label(session, access.project, label_id)
    if session.get(BugLabel, (bug.id, label.id)) is None:
        before = _names(session, bug)
        session.add(BugLabel(bug_id=bug.id, label_id=label.id))
        session.flush()
        _changed(session, access, bug, before)
    session.commit()
    return bug


def detach_label(*, session: Session, access: Access, bug_id: str, label_id: str) -> Bug:
    """Take a label off a bug; a label the bug does not have changes nothing."""
    bug = find_bug(session, access.project, bug_id, for_update=True)
    label = find_label(session, access.project, label_id)
    link = session.get(BugLabel, (bug.id, label.id))
    if link is not None:
        before = _names(session, bug)
        session.delete(link)
        session.flush()
        _changed(session, access, bug, before)
    session.commit()
    return bug
