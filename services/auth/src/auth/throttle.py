"""The per-account sign-in throttle: a limit on guesses at one email from any number of IPs.

The gateway limits sign-ins per client IP; this limits them per account. Each attempt for an
email counts before its password is checked (one atomic upsert, committed at once, so
concurrent attempts from many api processes cannot slip past the limit together). Past
`max_failures` in a window of `window_seconds` (started by the first failure), further
attempts for that email are refused with 429 and `Retry-After` until the window ends, even
with the right password. A successful sign-in clears the count.

Unknown emails are counted exactly like known ones (same status, same message, same argon2
work), so the throttle tells nothing about which accounts exist. Rows are keyed by the
SHA-256 of the normalised email and pruned once their window is over.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session

from .models import LoginFailure
from .settings import AuthSettings

LOCKED = "Too many failed sign-in attempts for this account; try again later"

_table = LoginFailure.__table__  # type: ignore[attr-defined]


def normalise(email: str) -> str:
    """The form sign-in looks accounts up by."""
    return email.strip().lower()


def email_hash(email: str) -> str:
    return hashlib.sha256(normalise(email).encode()).hexdigest()


@dataclass(frozen=True)
class LoginThrottle:
    max_failures: int
    window_seconds: int

    @classmethod
    def of(cls, settings: AuthSettings) -> LoginThrottle:
        return cls(max_failures=settings.login_failures_max,
                   window_seconds=settings.login_failures_window_seconds)

    def attempt(self, session: Session, *, email: str, now: datetime) -> int | None:
        """Count an attempt for `email` and commit it; the seconds to wait when the account is
        locked (this attempt is over the limit), else None."""
        cutoff = now - timedelta(seconds=self.window_seconds)
        expired = _table.c.window_started_at <= cutoff
        new = insert(_table).values(email_hash=email_hash(email), failures=1,
                                    window_started_at=now, last_failed_at=now)
        stmt = new.on_conflict_do_update(
            index_elements=[_table.c.email_hash],
            set_={
                "failures": sa.case((expired, 1), else_=_table.c.failures + 1),
                "window_started_at": sa.case((expired, now), else_=_table.c.window_started_at),
                "last_failed_at": now,
            },
        ).returning(_table.c.failures, _table.c.window_started_at)
        failures, started = session.execute(stmt).one()
        session.commit()
        if failures <= self.max_failures:
            return None
        ends = started + timedelta(seconds=self.window_seconds)
        return max(1, math.ceil((ends - now).total_seconds()))

    def clear(self, session: Session, *, email: str) -> None:
        """Forget the failures of `email` (a successful sign-in), in the caller's transaction."""
        session.execute(sa.delete(_table).where(_table.c.email_hash == email_hash(email)))

    def prune(self, session: Session, *, now: datetime) -> int:
        """Delete the rows whose window is over; commits; the number deleted."""
        cutoff = now - timedelta(seconds=self.window_seconds)
        result = session.execute(sa.delete(_table).where(_table.c.window_started_at <= cutoff))
        session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]
