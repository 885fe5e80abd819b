"""Helpers of the integrations tests: users and projects of the read models, events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bugnet_common.bus.events import Event
from bugnet_common.db import Database
from bugs.access import ROLE_DEFAULTS
from integrations import handlers

ROLE_PERMISSIONS: dict[str, frozenset[str]] = dict(ROLE_DEFAULTS)


@dataclass(frozen=True)
class User:
    id: str
    email: str
    display_name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Project:
    id: str
    slug: str
    name: str


def event(subject: str, *, source: str = "bugs", **data: Any) -> Event:
    return Event(type=subject, source=source, data=data)


def apply(db: Database, ev: Event) -> None:
    """Apply a read-model event exactly as the worker's consumer does (one transaction)."""
    with db.begin() as session:
        handlers.readmodel_dispatch(session=session, event=ev)
