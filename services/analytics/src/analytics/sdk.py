"""What the SDK routes share: the request as they need it (`SdkRequest`), its API key and its
validated body.

A request with an unknown key is a 401 before any complaint about its body (a client with a
wrong key learns that first); a malformed key never reaches the database. The same
`SdkRequest` is built by the Flask routes and by the WSGI fast path (`fastpath.py`), so both
answer alike.

`declared(endpoint)` holds the handlers the fast path shares to their Flask route's
`openapi.operation`: when responses are checked (the test suite), the body model they parse
and the answer they give are checked against it on both paths, as `web` does for Flask.
"""

from __future__ import annotations

import contextvars
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, g, has_request_context, request
from pydantic import BaseModel, ValidationError

from bugnet_common import errors, openapi, untrusted, web
from bugnet_common.db import Database

from . import access
from .batching import Ingestor
from .ingest import KEYS
from .keys import KeyCache

M = TypeVar("M", bound=BaseModel)

# The declared operation of the shared handler running now (only while checking).
_operation: contextvars.ContextVar[openapi.Operation | None] = contextvars.ContextVar(
    "analytics_sdk_operation", default=None)


@dataclass(frozen=True)
class SdkRequest:
    """An SDK request's body and the few headers the SDK endpoints read."""

    app: Flask
    body: bytes
    mimetype: str
    api_key_header: str | None
    client_ip: str

    @classmethod
    def from_flask(cls) -> SdkRequest:
        from flask import current_app

        return cls(app=current_app._get_current_object(),  # type: ignore[attr-defined]
                   body=request.get_data(cache=True), mimetype=request.mimetype or "",
                   api_key_header=request.headers.get("X-API-Key"), client_ip=g.client_ip)

    @property
    def db(self) -> Database:
        return self.app.extensions["bugnet.db"]  # type: ignore[no-any-return]

    def ingestor(self, name: str) -> Ingestor:
        return self.app.extensions[name]  # type: ignore[no-any-return]

    def json(self) -> Any:
        """The body's JSON value (as `bugnet_common.web.raw_json` reads it)."""
        if not self.body.strip():
            raise errors.BadRequest("Request body is empty; send a JSON object")
        if self.mimetype and self.mimetype != "application/json" \
                and not self.mimetype.endswith("+json"):
            raise errors.UnsupportedMediaType(
                f"Unsupported content type '{self.mimetype}'; send application/json")
        return untrusted.loads_json(self.body)

    def project_id_of(self, key_hash: str) -> str:
        """The project of a well-formed key's hash; 401 for an unknown or replaced key."""
        cache: KeyCache = self.app.extensions[KEYS]
        project_id = cache.project_id(self.db, key_hash)
        if project_id is None:
            raise errors.Unauthorized("Invalid API key")
        return project_id

    def parse(self, model: type[M]) -> tuple[str, M]:
        """The API key's hash (X-API-Key, else `api_key` in the body) and the body as
        `model`."""
        try:
            body = self.json()
        except errors.ApiError:
            if self.api_key_header:
                self.project_id_of(access.api_key_hash(self.api_key_header))
            raise
        _check_body(model)
        key = self.api_key_header
        if not key and isinstance(body, dict) and isinstance(body.get("api_key"), str):
            key = body["api_key"]
        key_hash = access.api_key_hash(key)
        if not isinstance(body, dict):
            self.project_id_of(key_hash)
            raise errors.BadRequest("Request body must be a JSON object")
        try:
            return key_hash, model.model_validate(body)
        except ValidationError as exc:
            self.project_id_of(key_hash)
            raise web.validation_error(exc) from None


def _check_body(model: type[BaseModel]) -> None:
    if not openapi.checking():
        return
    op = _operation.get()
    if op is None and has_request_context():
        op = web.current_operation()
    if op is not None:
        openapi.check_model(op, "body", model)


Handler = Callable[[SdkRequest], tuple[int, Any]]


def declared(endpoint: str) -> Callable[[Handler], Handler]:
    """Check a shared handler against the declaration of Flask view `endpoint` (its POST),
    when responses are checked; the fast path answers without `web.ok`."""
    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def checked(req: SdkRequest) -> tuple[int, Any]:
            if not openapi.checking():
                return handler(req)
            op = openapi.operation_for(req.app.view_functions[endpoint], "POST")
            token = _operation.set(op)
            try:
                status, data = handler(req)
            finally:
                _operation.reset(token)
            if op is not None:
                body = {"ok": True, "data": {} if data is None else data}
                openapi.check_response(op, status, json.loads(json.dumps(body, default=str)))
            return status, data

        return checked

    return wrap


def sdk_request(model: type[M]) -> tuple[str, M]:
    """In a Flask route: the request's API key hash and its body as `model`."""
    return SdkRequest.from_flask().parse(model)


def project_id_of(key_hash: str) -> str:
    """In a Flask route: the project of a well-formed key's hash (401 when unknown)."""
    return SdkRequest.from_flask().project_id_of(key_hash)
