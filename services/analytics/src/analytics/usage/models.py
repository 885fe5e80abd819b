"""The table of the usage area (migration 0003_usage)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from analytics.models import Base


def _pk(type_: Any) -> Any:
    return Field(sa_column=sa.Column(type_, primary_key=True))


def _count() -> Any:
    return Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))


class ApiUsageDaily(Base, table=True):
    """Requests of one project on one UTC day in one endpoint group with one status class.

    ``rate_limited``: of them, answered 429 (by the gateway or a service);
    ``rate_limited_by_gateway``: of those, refused by Envoy's rate limiter;
    ``refused_by_gateway``: of all, answered by Envoy itself (429, 401 from its JWT check,
    413, 503 when a service is down, ...).
    """

    __tablename__ = "api_usage_daily"

    project_id: str = _pk(sa.String(36))
    day: date = _pk(sa.Date)
    endpoint_group: str = _pk(sa.String(32))
    status_class: str = _pk(sa.String(8))
    requests: int = _count()
    rate_limited: int = _count()
    rate_limited_by_gateway: int = _count()
    refused_by_gateway: int = _count()


USAGE: sa.Table = ApiUsageDaily.__table__  # type: ignore[attr-defined]


class ApiUsagePending(Base, table=True):
    """Counts naming a project the read models do not know yet (the usage event overtook
    the project's ``project_created``, or a key's rotation). Retried with every usage event;
    dropped once older than ``consumer.PENDING_SECONDS`` (then the name was never a project:
    a mistyped slug, a made-up key). No ``project_id`` column: it names no project yet."""

    __tablename__ = "api_usage_pending"

    id: int | None = Field(default=None, sa_column=sa.Column(
        sa.BigInteger, sa.Identity(), primary_key=True))
    project_slug: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    api_key_hash: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    day: date = Field(sa_column=sa.Column(sa.Date, nullable=False))
    endpoint_group: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    status_class: str = Field(sa_column=sa.Column(sa.String(8), nullable=False))
    requests: int = _count()
    rate_limited: int = _count()
    rate_limited_by_gateway: int = _count()
    refused_by_gateway: int = _count()
    received_at: datetime = Field(sa_column=sa.Column(
        sa.DateTime(timezone=True), nullable=False, index=True))


PENDING: sa.Table = ApiUsagePending.__table__  # type: ignore[attr-defined]
