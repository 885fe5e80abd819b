"""Use cases of the auth service. Each is one transaction: rows and outbox events commit
together, or nothing does."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bugnet_common import errors
from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event, isoformat, payload, utcnow
from bugnet_common.bus.outbox import add_event

from . import passwords
from .models import BUS, AuthSession, User
from .schemas import (
    AccountExportOut,
    DeleteMeIn,
    ExportPartOut,
    LoginIn,
    OnboardingIn,
    PasswordIn,
    SignupIn,
    UpdateMeIn,
    user_out,
)
from .throttle import LOCKED, LoginThrottle, normalise
from .tokens import KeyStore

BAD_CREDENTIALS = "Invalid email or password"

# Collects the other services' parts of an account export, keyed by service name.
Gather = Callable[[User], dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class Issued:
    token: str
    user: User


def _emit(session: Session, subject: str, data: Any, correlation_id: str | None = None) -> None:
    add_event(session, BUS, Event(type=subject, source="auth", data=payload(data),
                                  correlation_id=correlation_id))


def _start_session(*, session: Session, keys: KeyStore, user: User, ttl: int, ip: str | None,
                   user_agent: str | None) -> str:
    now = utcnow()
    auth_session = AuthSession(id=str(uuid.uuid4()), user_id=user.id,
                               expires_at=now + timedelta(seconds=ttl), ip=ip,
                               user_agent=(user_agent or "")[:300] or None)
    session.add(auth_session)
    return keys.issue(user_id=user.id, email=user.email, session_id=auth_session.id,
                      issued_at=int(now.timestamp()),
                      expires_at=int(auth_session.expires_at.timestamp()))


def _email_taken(session: Session, email: str, *, except_user: str | None = None) -> bool:
    query = select(User.id).where(User.email == email)
    if except_user is not None:
        query = query.where(User.id != except_user)
    return session.exec(query).first() is not None


def signup(*, session: Session, keys: KeyStore, data: SignupIn, ttl: int, ip: str | None,
           user_agent: str | None) -> Issued:
    """Create an account and sign it in."""
    if _email_taken(session, data.email):
        raise errors.Conflict("An account with this email already exists")
    user = User(id=str(uuid.uuid4()), email=data.email, display_name=data.display_name,
                password_hash=passwords.hash_password(data.password))
    session.add(user)
    session.flush()
    token = _start_session(session=session, keys=keys, user=user, ttl=ttl, ip=ip,
                           user_agent=user_agent)
    _emit(session, subjects.USER_REGISTERED,
          ev.UserRegistered(user_id=user.id, email=user.email, display_name=user.display_name))
    try:
        session.commit()
    except IntegrityError:  # a concurrent signup took the email between check and insert
        session.rollback()
        raise errors.Conflict("An account with this email already exists") from None
    return Issued(token=token, user=user)


def login(*, session: Session, keys: KeyStore, data: LoginIn, ttl: int, ip: str | None,
          user_agent: str | None, throttle: LoginThrottle) -> Issued:
    """Check credentials and start a session; one message for every kind of failure.

    Past the per-account limit (auth.throttle) the attempt is 429 whatever the password, after
    the same argon2 work as any other attempt, for known and unknown emails alike."""
    email = normalise(data.email)
    wait = throttle.attempt(session, email=email, now=utcnow())
    if wait is not None:
        passwords.verify_password(None, data.password)  # equal work: no timing difference
        raise errors.RateLimited(LOCKED, headers={"Retry-After": str(wait)})
    user = session.exec(select(User).where(User.email == email)).first()
    if not passwords.verify_password(user.password_hash if user else None, data.password):
        raise errors.Unauthorized(BAD_CREDENTIALS)
    assert user is not None
    throttle.clear(session, email=email)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(data.password)
    token = _start_session(session=session, keys=keys, user=user, ttl=ttl, ip=ip,
                           user_agent=user_agent)
    session.commit()
    return Issued(token=token, user=user)


def prune_login_failures(*, session: Session, throttle: LoginThrottle) -> int:
    """Delete the throttle rows whose window is over (the worker calls this periodically)."""
    return throttle.prune(session, now=utcnow())


def _revoke(session: Session, sessions: list[AuthSession], reason: str) -> None:
    now = utcnow()
    for s in sessions:
        if s.revoked_at is None:
            s.revoked_at = now
            session.add(s)
        _emit(session, subjects.SESSION_REVOKED, ev.SessionRevoked(
            session_id=s.id, user_id=s.user_id, expires_at=int(s.expires_at.timestamp()),
            reason=reason))


def logout(*, session: Session, session_id: str) -> None:
    """Revoke this one session."""
    row = session.get(AuthSession, session_id)
    if row is not None and row.revoked_at is None:
        _revoke(session, [row], "logout")
    session.commit()


def is_session_revoked(*, session: Session, session_id: str) -> bool:
    row = session.get(AuthSession, session_id)
    return row is None or row.revoked_at is not None


def get_user(*, session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise errors.Unauthorized("This account no longer exists")
    return user


def update_me(*, session: Session, user_id: str, data: UpdateMeIn) -> User:
    """Change profile fields; an email already in use is 409."""
    user = get_user(session=session, user_id=user_id)
    if (data.email is not None and data.email != user.email
            and _email_taken(session, data.email, except_user=user.id)):
        raise errors.Conflict("An account with this email already exists")
    changes: list[str] = []
    for field in sorted(data.model_fields_set):
        value = getattr(data, field)
        if field in ("display_name", "email") and value is None:
            raise errors.ValidationFailed(f"Invalid '{field}': must not be null",
                                          details={field: "must not be null"})
        if getattr(user, field) != value:
            setattr(user, field, value)
            changes.append(field)
    if changes:
        user.updated_at = utcnow()
        session.add(user)
        _emit(session, subjects.USER_UPDATED, ev.UserUpdated(
            user_id=user.id, email=user.email, display_name=user.display_name,
            avatar=user.avatar, changes=sorted(changes)))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise errors.Conflict("An account with this email already exists") from None
    return user


def change_password(*, session: Session, user_id: str, current_session_id: str,
                    data: PasswordIn) -> None:
    """Set a new password and sign out every other session."""
    user = get_user(session=session, user_id=user_id)
    if not passwords.verify_password(user.password_hash, data.current_password):
        raise errors.Forbidden("Current password is incorrect")
    user.password_hash = passwords.hash_password(data.new_password)
    user.updated_at = utcnow()
    session.add(user)
    others = session.exec(select(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.id != current_session_id,
        AuthSession.revoked_at.is_(None))).all()  # type: ignore[union-attr]
    _revoke(session, list(others), "password_changed")
    session.commit()


def complete_onboarding(*, session: Session, user_id: str, data: OnboardingIn) -> User:
    user = get_user(session=session, user_id=user_id)
    user.onboarding_completed = True
    user.onboarding_role = data.role
    user.onboarding_team_size = str(data.team_size)
    user.onboarding_platforms = list(data.platforms)
    user.updated_at = utcnow()
    session.add(user)
    session.commit()
    return user


_MERGED_SECTIONS = ("memberships", "bugs", "comments")


def build_export(*, user: User, parts: dict[str, dict[str, Any]],
                 expected: list[str]) -> AccountExportOut:
    """Merge the services' parts into one export document."""
    sections: dict[str, list[dict[str, Any]]] = {section: [] for section in _MERGED_SECTIONS}
    services: dict[str, ExportPartOut] = {}
    for name in expected:
        reply = parts.get(name)
        if reply is None or not reply.get("ok"):
            services[name] = {"status": "unavailable"}
            continue
        data = reply.get("data") or {}
        services[name] = {"status": "ok", "data": data}
        for section in _MERGED_SECTIONS:
            sections[section].extend(data.get(section) or [])
    missing = [n for n, s in services.items() if s["status"] != "ok"]
    return {"generated_at": isoformat(utcnow()), "profile": user_out(user),
            "memberships": sections["memberships"], "bugs": sections["bugs"],
            "comments": sections["comments"], "services": services, "missing": missing,
            "complete": not missing}


def export_account(*, session: Session, user_id: str, gather: Gather,
                   expected: list[str]) -> AccountExportOut:
    user = get_user(session=session, user_id=user_id)
    return build_export(user=user, parts=gather(user), expected=expected)


def delete_account(*, session: Session, user_id: str, data: DeleteMeIn, gather: Gather,
                   expected: list[str]) -> AccountExportOut:
    """Delete the account after gathering its export; refused while it would orphan a team."""
    user = get_user(session=session, user_id=user_id)
    if not passwords.verify_password(user.password_hash, data.password):
        raise errors.Forbidden("Password is incorrect")
    export = build_export(user=user, parts=gather(user), expected=expected)
    if not export["complete"]:
        missing = ", ".join(export["missing"])
        raise errors.ServiceUnavailable(
            f"Could not gather your data from: {missing}. Nothing was deleted; try again shortly")
    blocking = [p for part in export["services"].values()
                for p in (part.get("data") or {}).get("blocking_projects", [])]
    if blocking:
        names = ", ".join(str(p.get("name") or p.get("slug")) for p in blocking)
        raise errors.Conflict(
            f"You are the only owner of projects with other members: {names}. "
            "Transfer ownership or remove the members first",
            details={"blocking_projects": blocking})
    live = session.exec(select(AuthSession).where(AuthSession.user_id == user_id,
                                                  AuthSession.revoked_at.is_(None))).all()  # type: ignore[union-attr]
    _revoke(session, list(live), "account_deleted")
    _emit(session, subjects.USER_DELETED, ev.UserDeleted(user_id=user.id, email=user.email))
    session.execute(sa.delete(AuthSession).where(AuthSession.user_id == user_id))  # type: ignore[arg-type]
    session.delete(user)
    session.commit()
    return export
