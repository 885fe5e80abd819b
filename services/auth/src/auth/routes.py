"""HTTP routes of the auth service (spec §4): parse, authorize, call a use case, wrap."""

from __future__ import annotations

import concurrent.futures
from typing import Annotated, Any, Literal

import httpx
from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import Field
from sqlmodel import Session
from typing_extensions import TypedDict

from bugnet_common import openapi, web
from bugnet_common.auth import Principal
from bugnet_common.bus.subjects import EXPORT_REQUESTED
from bugnet_common.runtime import Runtime, runtime_of

from . import service
from .models import User
from .schemas import (
    AccountExportOut,
    DeleteMeIn,
    LoginIn,
    OnboardingIn,
    PasswordIn,
    SessionIssuedOut,
    SignupIn,
    UpdateMeIn,
    UserOut,
    user_out,
)
from .settings import AuthSettings
from .throttle import LoginThrottle
from .tokens import KeyStore

bp = Blueprint("auth", __name__, url_prefix="/api")


class JwksOut(TypedDict):
    keys: Annotated[list[dict[str, Any]], Field(
        description="Public signing keys (RFC 7517 JWKs: kty, crv, x, y, kid, alg, use).")]


class HealthOut(TypedDict):
    status: Literal["healthy"]
    services: Annotated[dict[str, Literal["up"]], Field(
        description="Each checked service (and auth itself) by name.")]


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
    out: SessionIssuedOut = {"token": issued.token, "user": user_out(issued.user)}
    return web.ok(out, status)


_EXPORT_TEXT = ("The export holds the profile, the project memberships, and the bugs and "
                "comments the user authored, gathered from the services that own them.")


@bp.post("/auth/signup")
@openapi.operation(
    "Create an account", tag="Auth", body=SignupIn, response=SessionIssuedOut, status=201,
    errors=(409,),
    description="Signs the new account in. Passwords need at least 8 characters; emails are "
                "case-insensitive and unique (409 when taken).")
def signup() -> ResponseReturnValue:
    data = web.json_body(SignupIn)
    issued = service.signup(session=_session(), keys=_keys(), data=data,
                            ttl=_settings().token_ttl_seconds, ip=g.client_ip,
                            user_agent=request.user_agent.string)
    return _issued(issued, 201)


@bp.post("/auth/login")
@openapi.operation(
    "Sign in", tag="Auth", body=LoginIn, response=SessionIssuedOut,
    description="Starts a session and returns its bearer token. An unknown email and a wrong "
                "password get the same 401. Rate class `login`: 10 attempts a minute per IP. "
                "Per account, from any number of IPs: after 10 failed sign-ins for one email "
                "within 15 minutes (defaults; configurable), further attempts for it get 429 "
                "with `Retry-After` until the window ends, even with the right password, and "
                "alike for unknown emails; a successful sign-in resets the count.")
def login() -> ResponseReturnValue:
    data = web.json_body(LoginIn)
    settings = _settings()
    issued = service.login(session=_session(), keys=_keys(), data=data,
                           ttl=settings.token_ttl_seconds, ip=g.client_ip,
                           user_agent=request.user_agent.string,
                           throttle=LoginThrottle.of(settings))
    return _issued(issued, 200)


@bp.post("/auth/logout")
@openapi.operation("Sign out", tag="Auth",
                   description="Revokes this session: its token is refused everywhere "
                               "within a second. Takes no body.")
def logout() -> ResponseReturnValue:
    principal = _user()
    service.logout(session=_session(), session_id=principal.session_id)
    return web.ok({})


@bp.get("/auth/me")
@openapi.operation("Get the signed-in user", tag="Auth", response=UserOut)
def me() -> ResponseReturnValue:
    return web.ok(user_out(service.get_user(session=_session(), user_id=_user().user_id)))


@bp.route("/auth/me", methods=["PATCH", "PUT"])
@openapi.operation("Update the signed-in user", tag="Auth", body=UpdateMeIn, response=UserOut,
                   errors=(409,),
                   description="Changes only the fields sent. An email already in use is 409.")
def update_me() -> ResponseReturnValue:
    principal = _user()
    data = web.json_body(UpdateMeIn)
    user = service.update_me(session=_session(), user_id=principal.user_id, data=data)
    return web.ok(user_out(user))


@bp.put("/auth/password")
@openapi.operation("Change the password", tag="Auth", body=PasswordIn, errors=(403,),
                   description="A wrong current password is 403. Every other session of "
                               "the account is revoked.")
def change_password() -> ResponseReturnValue:
    principal = _user()
    data = web.json_body(PasswordIn)
    service.change_password(session=_session(), user_id=principal.user_id,
                            current_session_id=principal.session_id, data=data)
    return web.ok({})


@bp.delete("/auth/me")
@openapi.operation(
    "Delete the signed-in account", tag="Auth", body=DeleteMeIn, response=AccountExportOut,
    errors=(403, 409),
    description="Answers with the account's data export; the account and its sessions are "
                "gone. A wrong password is 403; 409 while the user is the only owner of a "
                "project with other members; 503 (nothing deleted) when a service cannot "
                "export. " + _EXPORT_TEXT)
def delete_me() -> ResponseReturnValue:
    principal = _user()
    data = web.json_body(DeleteMeIn)
    export = service.delete_account(session=_session(), user_id=principal.user_id, data=data,
                                    gather=_gather, expected=_settings().export_services)
    return web.ok(export)


@bp.post("/auth/onboarding")
@openapi.operation("Complete onboarding", tag="Auth", body=OnboardingIn, response=UserOut,
                   description="Records the answers and sets `onboarding.completed`.")
def onboarding() -> ResponseReturnValue:
    principal = _user()
    data = web.json_body(OnboardingIn)
    user = service.complete_onboarding(session=_session(), user_id=principal.user_id, data=data)
    return web.ok(user_out(user))


@bp.get("/auth/export")
@openapi.operation("Export the account's data", tag="Auth", response=AccountExportOut,
                   description=_EXPORT_TEXT + " Services that did not answer in time are "
                               "listed in `missing` and `complete` is false.")
def export() -> ResponseReturnValue:
    principal = _user()
    doc = service.export_account(session=_session(), user_id=principal.user_id, gather=_gather,
                                 expected=_settings().export_services)
    return web.ok(doc)


@bp.get("/auth/jwks.json")
@openapi.operation(
    "Get the token signing keys", tag="Auth", response=JwksOut, envelope=False,
    description="A plain RFC 7517 JWKS document, the one response not in the envelope: JWKS "
                "consumers expect this shape. Tokens are ES256 JWTs naming their key in `kid`.")
def jwks() -> ResponseReturnValue:
    # The one body outside the envelope: JWKS consumers (Envoy among them) expect RFC 7517.
    resp = jsonify(_keys().jwks())
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


@bp.get("/config/public")
@openapi.operation("Get the public client configuration", tag="Platform",
                   response=dict[str, Any],
                   description="Publishable values from settings (e.g. `firebase`, "
                               "`stripe_publishable_key`); null when unset.")
def public_config() -> ResponseReturnValue:
    return web.ok(dict(_settings().public_config))


def _probe(url: str, timeout: float) -> str:
    try:
        resp = httpx.get(url.rstrip("/") + "/readyz", timeout=timeout)
    except httpx.HTTPError:
        return "down"
    return "up" if resp.status_code == 200 else "down"


@bp.get("/health")
@openapi.operation("Check the service health", tag="Platform", response=HealthOut,
                   description="200 when every service answers; 503 naming what is down "
                               "(`details.services` maps each to `up` or `down`).")
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
    out: HealthOut = {"status": "healthy", "services": dict.fromkeys(statuses, "up")}
    return web.ok(out)


def register(app: Flask) -> None:
    app.register_blueprint(bp)
