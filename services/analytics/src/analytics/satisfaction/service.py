"""Players rating how a bug they reported was fixed (spec §6): only resolved bugs, one rating
per bug and player; a second rating by the same player replaces the first."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Session
from typing_extensions import TypedDict

from bugnet_common import errors
from bugnet_common.bus.events import isoformat, utcnow
from bugnet_common.openapi import Timestamp, Uuid

from ..models import Bug, Project, SatisfactionRating
from .schemas import SatisfactionIn

RATINGS = SatisfactionRating.__table__  # type: ignore[attr-defined]
# A bug closed as fixed may be rated; "wont_fix" and open ones may not.
RATEABLE_STATUSES = frozenset({"resolved", "closed"})


@dataclass(frozen=True)
class Rated:
    id: str
    bug_id: str
    rating: int
    comment: str | None
    created_at: datetime
    replaced: bool


def rater_key(data: SatisfactionIn, client_ip: str) -> str:
    """The player: steam_id, else player_email (stored hashed), else the client's IP."""
    if data.steam_id:
        return f"steam:{data.steam_id}"
    if data.player_email:
        return "email:" + hashlib.sha256(data.player_email.encode()).hexdigest()[:48]
    return f"ip:{client_ip}"[:80]


def rate_bug(*, session: Session, project: Project, data: SatisfactionIn,
             client_ip: str) -> Rated:
    """Record (or replace) the player's rating of a resolved bug of `project`."""
    bug = session.get(Bug, data.bug_id)
    if bug is None or bug.project_id != project.id:
        raise errors.NotFound("Bug not found")
    if bug.status not in RATEABLE_STATUSES:
        raise errors.Conflict("Only resolved bugs can be rated")
    now = utcnow()
    values: dict[str, Any] = {"rating": data.rating, "comment": data.comment or None,
                              "created_at": now}
    row = session.execute(
        pg_insert(RATINGS).values(id=str(uuid.uuid4()), project_id=project.id, bug_id=bug.id,
                                  rater_key=rater_key(data, client_ip), **values)
        .on_conflict_do_update(constraint="uq_satisfaction_bug_rater", set_=values)
        .returning(RATINGS.c.id, RATINGS.c.created_at,
                   # PostgreSQL 18: the row the upsert replaced, if any
                   sa.literal_column("old.id IS NOT NULL"))).one()
    session.commit()
    return Rated(id=row[0], bug_id=bug.id, rating=data.rating, comment=values["comment"],
                 created_at=row[1], replaced=bool(row[2]))


class RatingOut(TypedDict):
    id: Uuid
    bug_id: Uuid
    rating: int
    comment: str | None
    created_at: Timestamp
    replaced: bool


def rated_out(rated: Rated) -> RatingOut:
    return {"id": rated.id, "bug_id": rated.bug_id, "rating": rated.rating,
            "comment": rated.comment, "created_at": isoformat(rated.created_at),
            "replaced": rated.replaced}
