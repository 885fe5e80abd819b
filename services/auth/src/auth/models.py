"""Tables of the auth service: users, sessions (token ids) and signing keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from bugnet_common.bus.events import utcnow
from bugnet_common.bus.tables import bus_tables


class Base(SQLModel, registry=registry()):
    """This service's tables, on a MetaData of their own (services may share a process in tests)."""


BUS = bus_tables(Base.metadata)


class User(Base, table=True):
    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=36)
    email: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))  # lower-cased
    display_name: str = Field(max_length=100)
    avatar: str | None = Field(default=None, max_length=2048)
    password_hash: str
    onboarding_completed: bool = False
    onboarding_role: str | None = None
    onboarding_team_size: str | None = None
    onboarding_platforms: list[str] = Field(default_factory=list,
                                            sa_column=sa.Column(JSONB, nullable=False,
                                                                server_default="[]"))
    created_at: datetime = Field(default_factory=utcnow,
                                 sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow,
                                 sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class AuthSession(Base, table=True):
    """One signed-in session; its id is the token's `sid`."""

    __tablename__ = "sessions"

    id: str = Field(primary_key=True, max_length=36)
    user_id: str = Field(sa_column=sa.Column(sa.String(36), sa.ForeignKey("users.id",
                                             ondelete="CASCADE"), nullable=False, index=True))
    created_at: datetime = Field(default_factory=utcnow,
                                 sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=sa.Column(
        sa.DateTime(timezone=True), nullable=True))
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=300)


class SigningKey(Base, table=True):
    """A JWT signing key; the newest active one signs, every unretired one verifies."""

    __tablename__ = "signing_keys"

    kid: str = Field(primary_key=True, max_length=64)
    algorithm: str = Field(max_length=16)
    private_pem: str
    public_jwk: dict[str, Any] = Field(sa_column=sa.Column(JSONB, nullable=False))
    created_at: datetime = Field(default_factory=utcnow,
                                 sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    retired_at: datetime | None = Field(default=None, sa_column=sa.Column(
        sa.DateTime(timezone=True), nullable=True))


class LoginFailure(Base, table=True):
    """Failed sign-ins of one email within the current window (the per-account throttle).

    Keyed by the SHA-256 of the normalised email, known account or not, so the table neither
    stores addresses nor tells which ones have accounts. Rows whose window ended are pruned.
    """

    __tablename__ = "login_failures"

    email_hash: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    window_started_at: datetime = Field(sa_column=sa.Column(
        sa.DateTime(timezone=True), nullable=False, index=True))
    last_failed_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True),
                                                         nullable=False))
