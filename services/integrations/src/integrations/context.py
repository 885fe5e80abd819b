"""What every integrations route needs from the request: the session, the caller, their access."""

from __future__ import annotations

from flask import current_app
from sqlmodel import Session

from bugnet_common.auth import Principal
from bugnet_common.runtime import Runtime, runtime_of

from . import access as access_mod
from .access import Access
from .settings import IntegrationsSettings


def rt() -> Runtime:
    return runtime_of(current_app)


def settings() -> IntegrationsSettings:
    return rt().settings  # type: ignore[return-value]


def session() -> Session:
    return rt().session(current_app)  # type: ignore[no-any-return]


def principal() -> Principal:
    user = rt().user()
    assert user is not None
    return user


def access(slug: str, permission: str | None = None) -> Access:
    """The signed-in caller's access to `slug` (401 / 404 / 403 as the spec says)."""
    return access_mod.access_for(session(), principal(), slug, permission)
