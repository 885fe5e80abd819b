"""Flask plumbing shared by every service: the envelope, body parsing, pagination, errors.

Invariant: every response body a service produces is the envelope; nothing outside
`register_error_handlers` builds an error body.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

import psycopg
from flask import Flask, Response, current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from pydantic import BaseModel, ValidationError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from . import errors, openapi
from .logs import bind_request, configure_logging
from .settings import ServiceSettings
from .untrusted import loads_json, parse_json, reject_nul

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


def ok(data: Any = None, status: int = 200, meta: dict[str, Any] | None = None) -> tuple[Response, int]:
    body: dict[str, Any] = {"ok": True, "data": {} if data is None else data}
    if meta is not None:
        body["meta"] = meta
    if openapi.checking():
        op = current_operation()
        if op is not None:
            openapi.check_response(op, status, json.loads(json.dumps(body, default=str)))
    return jsonify(body), status


def current_operation() -> openapi.Operation | None:
    """The declared operation of the route serving this request, if it declares one."""
    if request.endpoint is None:
        return None
    view = current_app.view_functions.get(request.endpoint)
    return None if view is None else openapi.operation_for(view, request.method)


def _check_declared(kind: Any, model: type[BaseModel]) -> None:
    if openapi.checking():
        op = current_operation()
        if op is not None:
            openapi.check_model(op, kind, model)


def created(data: Any) -> tuple[Response, int]:
    return ok(data, 201)


@dataclass(frozen=True)
class Page:
    page: int = 1
    limit: int = 20

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def page_from_request(max_limit: int = 100) -> Page:
    """Read `page` and `limit` from the query string; 400 on anything but sane integers."""
    values = {}
    for name, default, upper in (("page", 1, 1_000_000), ("limit", 20, max_limit)):
        raw = request.args.get(name)
        if raw is None or raw == "":
            values[name] = default
            continue
        try:
            value = int(raw)
        except ValueError:
            raise errors.ValidationFailed(f"'{name}' must be an integer",
                                          details={name: "must be an integer"}) from None
        if not 1 <= value <= upper:
            raise errors.ValidationFailed(f"'{name}' must be between 1 and {upper}",
                                          details={name: f"must be between 1 and {upper}"})
        values[name] = value
    return Page(**values)


def paginated(items: Sequence[Any], page: Page, total: int) -> tuple[Response, int]:
    pages = math.ceil(total / page.limit) if total else 0
    return ok(list(items), meta={"page": page.page, "limit": page.limit, "total": total,
                                 "pages": pages})


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "body"


def validation_error(exc: ValidationError) -> errors.ValidationFailed:
    details: dict[str, str] = {}
    for err in exc.errors():
        field = _field_name(tuple(err.get("loc", ())))
        msg = err.get("msg", "invalid value")
        if err.get("type") == "missing":
            msg = "is required"
        details.setdefault(field, msg)
    first_field, first_msg = next(iter(details.items()))
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return errors.ValidationFailed(f"Invalid '{first_field}': {first_msg}{more}", details=details)


def raw_json(*, allow_empty: bool = False, keep_unstorable: bool = False) -> Any:
    """The request's JSON value. Empty body → {} when `allow_empty` (no-body POSTs).
    `keep_unstorable`: pass NULs and unpaired surrogates through, for a handler that cleans
    them itself (the SDK submit: a game's report is cleaned, never refused for them)."""
    data = request.get_data(cache=True)
    if not data.strip():
        if allow_empty:
            return {}
        raise errors.BadRequest("Request body is empty; send a JSON object")
    mimetype = request.mimetype
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise errors.UnsupportedMediaType(
            f"Unsupported content type '{mimetype}'; send application/json")
    return loads_json(data, check_text=not keep_unstorable)


def json_body(model: type[M], *, allow_empty: bool = False, keep_unstorable: bool = False) -> M:
    """Parse and validate the body as `model`; unknown fields are ignored."""
    _check_declared("body", model)
    payload = raw_json(allow_empty=allow_empty, keep_unstorable=keep_unstorable)
    if not isinstance(payload, dict):
        raise errors.BadRequest("Request body must be a JSON object")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise validation_error(exc) from None


def query_args(model: type[M]) -> M:
    """Parse and validate the query string as `model` (a repeated name gives a list only
    to list-typed fields); unknown parameters are ignored."""
    _check_declared("query", model)
    values: dict[str, Any] = {}
    for name in request.args:
        field = model.model_fields.get(name)
        many = field is not None and getattr(field.annotation, "__origin__", None) is list
        values[name] = request.args.getlist(name) if many else request.args.get(name)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise validation_error(exc) from None


_HTTP_CODES = {
    400: errors.BadRequest, 401: errors.Unauthorized, 403: errors.Forbidden, 404: errors.NotFound,
    405: errors.MethodNotAllowed, 409: errors.Conflict, 413: errors.PayloadTooLarge,
    415: errors.UnsupportedMediaType, 429: errors.RateLimited, 503: errors.ServiceUnavailable,
}


def _envelope(exc: errors.ApiError) -> Response:
    resp = jsonify(exc.body())
    resp.status_code = exc.status
    for name, value in exc.headers.items():
        resp.headers[name] = value
    return resp


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(errors.ApiError)
    def _api_error(exc: errors.ApiError) -> Response:
        return _envelope(exc)

    @app.errorhandler(ValidationError)
    def _pydantic(exc: ValidationError) -> Response:
        return _envelope(validation_error(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        cls = _HTTP_CODES.get(status)
        if status == 404:
            err: errors.ApiError = errors.NotFound("No such endpoint")
        elif status == 405:
            err = errors.MethodNotAllowed(f"Method {request.method} is not allowed here")
        elif status == 413:
            err = errors.PayloadTooLarge()
        elif cls is not None:
            err = cls()
        else:
            err = errors.ApiError(exc.description or "Request failed")
            err.status = status  # type: ignore[misc]
        return _envelope(err)

    @app.errorhandler(sa_exc.DBAPIError)
    @app.errorhandler(sa_exc.TimeoutError)
    @app.errorhandler(psycopg.OperationalError)
    def _database(exc: Exception) -> Response:
        if database_unavailable(exc):
            # PostgreSQL restarting, unreachable or the pool exhausted: the client may retry.
            log.warning("database unavailable: %s", str(exc).splitlines()[0][:300])
            return _envelope(errors.ServiceUnavailable(
                "The database is temporarily unavailable; retry shortly"))
        log.exception("unhandled error")
        return _envelope(errors.ApiError())

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return _envelope(errors.ApiError())


def database_unavailable(exc: BaseException) -> bool:
    """True for errors that mean "the database is away for now" (connection refused or lost,
    server starting up or shutting down, pool exhausted), not a bug in the request."""
    if isinstance(exc, (sa_exc.TimeoutError, psycopg.OperationalError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(
            exc.orig, (psycopg.OperationalError, psycopg.InterfaceError))
    return False


def client_ip(settings: ServiceSettings) -> str:
    if settings.trust_gateway_headers:
        forwarded = request.headers.get("x-bugnet-client-ip")
        if forwarded:
            return forwarded.strip()
    return request.remote_addr or "unknown"


def _request_id() -> str:
    rid = request.headers.get("x-request-id", "")
    if 8 <= len(rid) <= 128 and rid.isascii() and rid.isprintable():
        return rid
    return uuid.uuid4().hex


class UntrustedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, with `loads` (request.get_json) as `parse_json`: a ValueError (so a 400,
    or None when silent) for deep nesting instead of a RecursionError."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return parse_json(s, **kwargs)


def reject_bad_query_string() -> None:
    """400 for a query string whose percent-decoded bytes are not UTF-8 (werkzeug would
    silently turn them into U+FFFD and the request would run on altered values)."""
    raw = request.query_string
    if not raw:
        return
    try:
        unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise errors.BadRequest("The query string is not valid UTF-8") from None


def create_service_app(name: str, settings: ServiceSettings,
                       blueprints: Sequence[Any] = (),
                       readiness: Sequence[tuple[str, Callable[[], None]]] = ()) -> Flask:
    """A Flask app with logging, request ids, the envelope errors and /healthz + /readyz."""
    from .health import health_blueprint
    from .metrics import instrument_flask
    from .orphans import exit_with_parent, under_granian

    configure_logging(name, settings.log_level)
    if under_granian():
        exit_with_parent()  # granian's workers outlive a killed server (see orphans.py)
    app = Flask(name, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json = UntrustedJSONProvider(app)  # request.get_json: parse_json's depth rules
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["bugnet.settings"] = settings
    instrument_flask(app, name)  # GET /metrics; requests counted by route template

    @app.before_request
    def _bind() -> None:
        g.request_id = _request_id()
        g.client_ip = client_ip(settings)
        bind_request(g.request_id)
        reject_bad_query_string()
        reject_nul(request.args)  # a form is checked where it is read

    @app.after_request
    def _stamp(resp: Response) -> Response:
        resp.headers["X-Request-Id"] = g.get("request_id", "")
        return resp

    @app.teardown_request
    def _unbind(_exc: BaseException | None) -> None:
        bind_request(None)  # nothing after the request (in its thread) inherits its id

    register_error_handlers(app)
    app.register_blueprint(health_blueprint(readiness))
    for bp in blueprints:
        app.register_blueprint(bp)
    return app


def settings_of(app: Flask) -> ServiceSettings:
    return app.extensions["bugnet.settings"]  # type: ignore[no-any-return]
