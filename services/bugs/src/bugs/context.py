"""What every bugs route needs from the request: the session, the caller, their access."""

from __future__ import annotations

import hashlib

from flask import current_app, g, request
from sqlmodel import Session

from bugnet_common.auth import Principal
from bugnet_common.runtime import Runtime, runtime_of

from . import access as access_mod
from .access import Access
from .models import Project
from .settings import BugsSettings


def rt() -> Runtime:
    return runtime_of(current_app)


def settings() -> BugsSettings:
    return rt().settings  # type: ignore[return-value]


def session() -> Session:
    return rt().session(current_app)  # type: ignore[no-any-return]


def principal() -> Principal:
    user = rt().user()
    assert user is not None
    return user


def optional_principal() -> Principal | None:
    return rt().user(optional=True)


def access(slug: str, permission: str | None = None, *, for_update: bool = False) -> Access:
    """The signed-in caller's access to `slug` (401 / 404 / 403 as the spec says)."""
    return access_mod.access_for(session(), slug, principal(), permission=permission,
                                 for_update=for_update)


def sdk_key() -> str | None:
    """The request's API key: X-API-Key, else `api_key` in a JSON body."""
    key = request.headers.get("X-API-Key")
    if not key and request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict) and isinstance(body.get("api_key"), str):
            key = body["api_key"]
    return key


def sdk_project() -> Project:
    """The project of the request's API key: X-API-Key, else `api_key` in a JSON body."""
    return access_mod.project_for_api_key(session(), sdk_key())


def client_key() -> str:
    """One voter: the signed-in user, else the client's IP and user agent."""
    user = optional_principal()
    if user is not None:
        return f"user:{user.user_id}"
    raw = f"{g.client_ip}|{request.user_agent.string}".encode()
    return "client:" + hashlib.sha256(raw).hexdigest()[:40]
