"""What every analytics route needs from the request: the session, the caller, their access,
the SDK's API key."""

from __future__ import annotations

from flask import current_app, request
from sqlmodel import Session

from bugnet_common.auth import Principal
from bugnet_common.runtime import Runtime, runtime_of

from . import access as access_mod
from .models import Project
from .settings import AnalyticsSettings


def rt() -> Runtime:
    return runtime_of(current_app)


def settings() -> AnalyticsSettings:
    return rt().settings  # type: ignore[return-value]


def session() -> Session:
    return rt().session(current_app)  # type: ignore[no-any-return]


def principal() -> Principal:
    user = rt().user()
    assert user is not None
    return user


def project(slug: str, permission: str | None = None) -> Project:
    """Project `slug` for the signed-in caller (401 / 404 / 403 as the spec says)."""
    return access_mod.access_for(session(), principal(), slug, permission)


def access(slug: str, permission: str | None = None) -> access_mod.Access:
    """The signed-in caller's standing in `slug` (role, effective permissions)."""
    return access_mod.member_access(session(), principal(), slug, permission)


def sdk_key(body: object = None) -> str | None:
    """The request's API key: X-API-Key, else `api_key` in the JSON body (`body` when the
    caller parsed it already)."""
    key = request.headers.get("X-API-Key")
    if key:
        return key
    if body is None and request.is_json:
        body = request.get_json(silent=True)
    if isinstance(body, dict) and isinstance(body.get("api_key"), str):
        return body["api_key"]
    return None


def sdk_project() -> Project:
    """The project of the request's API key (401 for a missing, invalid or replaced key)."""
    return access_mod.project_for_api_key(session(), sdk_key())
