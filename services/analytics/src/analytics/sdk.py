"""What the SDK routes share: the request as they need it (`SdkRequest`), its API key and its
validated body.

A request with an unknown key is a 401 before any complaint about its body (a client with a
wrong key learns that first); a malformed key never reaches the database. The same
`SdkRequest` is built by the Flask routes and by the WSGI fast path (`fastpath.py`), so both
answer alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, g, request
from pydantic import BaseModel, ValidationError

from bugnet_common import errors, web
from bugnet_common.db import Database

from . import access
from .batching import Ingestor
from .ingest import KEYS
from .keys import KeyCache

M = TypeVar("M", bound=BaseModel)


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
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise errors.BadRequest("Malformed JSON body") from None

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


def sdk_request(model: type[M]) -> tuple[str, M]:
    """In a Flask route: the request's API key hash and its body as `model`."""
    return SdkRequest.from_flask().parse(model)


def project_id_of(key_hash: str) -> str:
    """In a Flask route: the project of a well-formed key's hash (401 when unknown)."""
    return SdkRequest.from_flask().project_id_of(key_hash)
