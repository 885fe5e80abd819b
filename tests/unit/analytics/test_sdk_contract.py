"""`sdk.declared`: the handlers the WSGI fast path shares with their Flask routes are checked
against the routes' declarations on both paths (the fast path never calls `web.ok`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Blueprint, Flask, g
from flask.typing import ResponseReturnValue
from pydantic import BaseModel
from typing_extensions import TypedDict

from analytics.sdk import SdkRequest, declared
from bugnet_common import openapi, web

KEY = "sk_live_" + "k" * 32  # well-formed: parse needs no database when the body is valid


class PingIn(BaseModel):
    token: str


class OtherIn(BaseModel):
    token: str


class PingOut(TypedDict):
    token: str


def _app(model: type[BaseModel], reply: dict[str, Any], status: int = 201) -> tuple[Flask, Any]:
    bp = Blueprint("pings", __name__, url_prefix="/api")

    @declared("pings.ping")
    def handler(req: SdkRequest) -> tuple[int, Any]:
        req.parse(model)
        return status, reply

    @bp.post("/ping")
    @openapi.operation("Ping", tag="T", auth="api_key", body=PingIn, response=PingOut,
                       status=201)
    def ping() -> ResponseReturnValue:
        code, data = handler(SdkRequest.from_flask())
        return web.ok(data, code)

    app = Flask("t")
    web.register_error_handlers(app)
    app.before_request(lambda: setattr(g, "client_ip", "127.0.0.1"))
    app.register_blueprint(bp)
    return app, handler


def _fast(app: Flask, handler: Any) -> tuple[int, Any]:
    """Call the handler as the fast path does: no Flask request context."""
    req = SdkRequest(app=app, body=b'{"token": "t"}', mimetype="application/json",
                     api_key_header=KEY, client_ip="127.0.0.1")
    return handler(req)  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def checking(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(openapi.CHECK_ENV, "1")
    yield


def test_a_declared_answer_passes_on_both_paths() -> None:
    app, handler = _app(PingIn, {"token": "t"})
    assert _fast(app, handler) == (201, {"token": "t"})
    resp = app.test_client().post("/api/ping", json={"token": "t"}, headers={"X-API-Key": KEY})
    assert resp.status_code == 201, resp.get_json()


@pytest.mark.parametrize(("model", "reply", "status"), [
    (PingIn, {"token": "t", "leak": 1}, 201),  # an undocumented field
    (PingIn, {}, 201),  # a documented one missing
    (PingIn, {"token": "t"}, 200),  # an undocumented status
    (OtherIn, {"token": "t"}, 201),  # another body model than declared
])
def test_an_undeclared_answer_fails_on_both_paths(model: type[BaseModel], reply: dict[str, Any],
                                                  status: int) -> None:
    app, handler = _app(model, reply, status)
    with pytest.raises(openapi.ContractViolation):
        _fast(app, handler)
    resp = app.test_client().post("/api/ping", json={"token": "t"}, headers={"X-API-Key": KEY})
    assert resp.status_code == 500


def test_without_checking_nothing_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(openapi.CHECK_ENV)
    app, handler = _app(OtherIn, {"token": "t", "leak": 1}, 200)
    assert _fast(app, handler) == (200, {"token": "t", "leak": 1})
