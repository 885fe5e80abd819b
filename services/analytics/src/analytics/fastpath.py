"""The WSGI fast path of the hottest SDK endpoints (session starts and ends, perf snapshots).

Measured (bench/analytics_ingest.py and an in-process comparison): Flask's request machinery
(request context, URL map, hooks, response object) cost about twice the work of a session
start itself. These endpoints need none of it: a JSON body, one header, a JSON answer. So
`SdkFastPath` wraps the Flask app's WSGI callable and answers those paths itself, with the
very handlers the Flask routes call (`SdkRequest` in, (status, data) out) and the same
envelope, errors, body cap and X-Request-Id; every other request goes to Flask untouched.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask

from bugnet_common import errors
from bugnet_common.logs import bind_request
from bugnet_common.metrics import SLOW_REQUEST_SECONDS, log_request, observe_request
from bugnet_common.settings import ServiceSettings

from .sdk import SdkRequest

log = logging.getLogger(__name__)

Handler = Callable[[SdkRequest], tuple[int, Any]]
StartResponse = Callable[..., Any]

_REASONS = {s.value: s.phrase for s in HTTPStatus}


def _request_id(environ: Mapping[str, Any]) -> str:
    rid = environ.get("HTTP_X_REQUEST_ID", "")
    if 8 <= len(rid) <= 128 and rid.isascii() and rid.isprintable():
        return str(rid)
    return uuid.uuid4().hex


def _client_ip(environ: Mapping[str, Any], settings: ServiceSettings) -> str:
    if settings.trust_gateway_headers:
        forwarded = environ.get("HTTP_X_BUGNET_CLIENT_IP")
        if forwarded:
            return str(forwarded).strip()
    return str(environ.get("REMOTE_ADDR") or "unknown")


class SdkFastPath:
    """WSGI middleware: POSTs to `routes` are answered here, everything else by Flask."""

    def __init__(self, app: Flask, routes: Mapping[str, Handler]) -> None:
        self.app = app
        self.flask_wsgi = app.wsgi_app
        self.routes = dict(routes)
        self.settings: ServiceSettings = app.extensions["bugnet.settings"]
        self.log_requests = self.settings.log_requests

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        handler = self.routes.get(environ.get("PATH_INFO", ""))
        if handler is None or environ.get("REQUEST_METHOD") != "POST":
            return self.flask_wsgi(environ, start_response)  # type: ignore[no-any-return]
        started = time.perf_counter()
        request_id = _request_id(environ)
        bind_request(request_id)
        headers: dict[str, str] = {}
        try:
            req = SdkRequest(app=self.app, body=self._body(environ),
                             mimetype=environ.get("CONTENT_TYPE", "").split(";", 1)[0]
                             .strip().lower(),
                             api_key_header=environ.get("HTTP_X_API_KEY"),
                             client_ip=_client_ip(environ, self.settings))
            status, data = handler(req)
            body: dict[str, Any] = {"ok": True, "data": {} if data is None else data}
        except errors.ApiError as exc:
            status, body, headers = exc.status, exc.body(), exc.headers
        except Exception:
            log.exception("unhandled error")
            error = errors.ApiError()
            status, body = error.status, error.body()
        finally:
            bind_request(None)
        payload = json.dumps(body, separators=(",", ":")).encode()
        start_response(f"{status} {_REASONS.get(status, '')}", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
            ("X-Request-Id", request_id), *headers.items()])
        # The path is one of the fixed keys of `routes`: a template of its own.
        seconds = time.perf_counter() - started
        observe_request(self.settings.service_name, "POST", environ["PATH_INFO"], status, seconds)
        if self.log_requests or seconds >= SLOW_REQUEST_SECONDS or status >= 500:
            bind_request(request_id)
            log_request("POST", environ["PATH_INFO"], status, seconds, every=self.log_requests)
            bind_request(None)
        return [payload]

    def _body(self, environ: Mapping[str, Any]) -> bytes:
        """The request body, refused past the service's cap (the gateway caps first)."""
        cap = self.settings.max_body_bytes
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise errors.BadRequest("Invalid Content-Length") from None
        if length > cap:
            raise errors.PayloadTooLarge()
        stream = environ["wsgi.input"]
        data: bytes = stream.read(length) if length > 0 else stream.read(cap + 1)
        if len(data) > cap:
            raise errors.PayloadTooLarge()
        return data
