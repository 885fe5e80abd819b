"""HTTP routes of the auth service (spec §4): parse, authorize, call a use case, wrap."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx
from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from sqlmodel import Session

from bugnet_common import web
from bugnet_common.auth import Principal
from bugnet_common.bus.subjects import EXPORT_REQUESTED
from bugnet_common.runtime import Runtime, runtime_of

from . import service
from .models import User
from .schemas import DeleteMeIn, LoginIn, OnboardingIn, PasswordIn, SignupIn, UpdateMeIn, user_out
from .settings import AuthSettings
from .tokens import KeyStore

bp = Blueprint("auth", __name__, url_prefix="/api")


def _rt() -> Runtime:
    return runtime_of(current_app)


def _settings() -> AuthSettings:
    return _rt().settings  # type: ignore[return-value]


def _keys() -> KeyStore:
    return current_app.extensions["auth.keys"]  # type: ignore[no-any-return]


def _session() -> Session:
    return _rt().session(current_app)  # type: ignore[no-any-return]


def _user() -> Principal:
    principal = _rt().user()
    assert principal is not None
    return principal


def _gather(user: User) -> dict[str, dict[str, Any]]:
    bus = _rt().bus
    settings = _settings()
    if bus is None:
        return {}
    return bus.gather(EXPORT_REQUESTED, {"user_id": user.id, "email": user.email},
                      expected=set(settings.export_services),
                      timeout=settings.export_timeout_seconds)


def _issued(issued: service.Issued, status: int) -> ResponseReturnValue:
    return web.ok({"token": issued.token, "user": user_out(issued.user)}, status)


@bp.post("/auth/signup")
def signup() -> ResponseReturnValue:
    data = web.json_body(SignupIn)
    issued = service.signup(session=_session(), keys=_keys(), data=data,
                            ttl=_settings().token_ttl_seconds, ip=g.client_ip,
                            user_agent=request.user_agent.string)
    return _issued(issued, 201)


@bp.post("/auth/login")
def login() -> ResponseReturnValue:
    data = web.json_body(LoginIn)
    issued = service.login(session=_session(), keys=_keys(), data=data,
                           ttl=_settings().token_ttl_seconds, ip=g.client_ip,
                           user_agent=request.user_agent.string)
    return _issued(issued, 200)


@bp.post("/auth/logout")
def logout() -> ResponseReturnValue:
    principal = _user()
    service.logout(session=_session(), session_id=principal.session_id)
    return web.ok({})


@bp.get("/auth/me")
def me() -> ResponseReturnValue:
    return web.ok(user_out(service.get_user(session=_session(), user_id=_user().user_id)))


@bp.route("/auth/me", methods=["PATCH", "PUT"])
def update_me() -> ResponseReturnValue:
    principal = _user()
    data = web.json_body(UpdateMeIn)
    user = service.update_me(session=_session(), user_id=principal.user_id, data=data)
    return web.ok(user_out(user))


@bp.put("/auth/password")
def change_password() -> ResponseReturnValue:
    principal = _user()
    data = web.json_body(PasswordIn)
    service.change_password(session=_session(), user_id=principal.user_id,
                            current_session_id=principal.session_id, data=data)
    return web.ok({})


@bp.delete("/auth/me")
def delete_me() -> ResponseReturnValue:
    principal = _user()
    data = web.json_body(DeleteMeIn)
    export = service.delete_account(session=_session(), user_id=principal.user_id, data=data,
                                    gather=_gather, expected=_settings().export_services)
    return web.ok(export)


@bp.post("/auth/onboarding")
def onboarding() -> ResponseReturnValue:
    principal = _user()
    data = web.json_body(OnboardingIn)
    user = service.complete_onboarding(session=_session(), user_id=principal.user_id, data=data)
    return web.ok(user_out(user))


@bp.get("/auth/export")
def export() -> ResponseReturnValue:
    principal = _user()
    doc = service.export_account(session=_session(), user_id=principal.user_id, gather=_gather,
                                 expected=_settings().export_services)
    return web.ok(doc)


@bp.get("/auth/jwks.json")
def jwks() -> ResponseReturnValue:
    # The one body outside the envelope: JWKS consumers (Envoy among them) expect RFC 7517.
    resp = jsonify(_keys().jwks())
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


@bp.get("/config/public")
def public_config() -> ResponseReturnValue:
    return web.ok(dict(_settings().public_config))


def _probe(url: str, timeout: float) -> str:
    try:
        resp = httpx.get(url.rstrip("/") + "/readyz", timeout=timeout)
    except httpx.HTTPError:
        return "down"
    return "up" if resp.status_code == 200 else "down"


@bp.get("/health")
def health() -> ResponseReturnValue:
    settings = _settings()
    statuses: dict[str, str] = {}
    for name, check in _rt().readiness():
        try:
            check()
        except Exception:
            statuses["auth"] = "down"
            statuses[f"auth.{name}"] = "down"
    statuses.setdefault("auth", "up")
    targets = dict(settings.service_urls)
    if targets:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(targets)) as pool:
            futures = {name: pool.submit(_probe, url, settings.health_timeout_seconds)
                       for name, url in targets.items()}
            statuses.update({name: f.result() for name, f in futures.items()})
    down = sorted(name for name, status in statuses.items() if status != "up")
    if down:
        return jsonify({"ok": False, "error": f"Unhealthy: {', '.join(down)} not answering",
                        "code": "service_unavailable",
                        "details": {"services": statuses}}), 503
    return web.ok({"status": "healthy", "services": statuses})


def register(app: Flask) -> None:
    app.register_blueprint(bp)
