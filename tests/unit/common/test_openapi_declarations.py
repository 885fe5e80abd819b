"""Route declarations (bugnet_common.openapi): what the response check catches and lets pass."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NotRequired

import pytest
from flask import Blueprint, Flask
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from bugnet_common import openapi, web
from bugnet_common.openapi import Timestamp, Uuid


class ThingIn(BaseModel):
    name: str = Field(min_length=1, max_length=20)


class Filter(BaseModel):
    status: list[str] = []
    q: str | None = None


class OwnerOut(TypedDict):
    id: Uuid | None
    display_name: str


class ThingOut(TypedDict):
    id: Uuid
    name: str
    created_at: Timestamp
    owner: OwnerOut
    note: NotRequired[str]


def _app(reply: dict[str, Any], status: int = 201) -> Flask:
    bp = Blueprint("things", __name__, url_prefix="/api")

    @bp.post("/things")
    @openapi.operation("Create a thing", tag="Things", body=ThingIn, response=ThingOut,
                       status=201)
    def create() -> ResponseReturnValue:
        web.json_body(ThingIn)
        return web.ok(reply, status)

    @bp.get("/things")
    @openapi.operation("List things", tag="Things", query=Filter, response=ThingOut,
                       paginated=True)
    def listing() -> ResponseReturnValue:
        args = web.query_args(Filter)
        page = web.page_from_request()
        return web.paginated([reply | {"name": ",".join(args.status)}], page, 1)

    @bp.put("/things/<thing_id>")
    @openapi.operation("Replace a thing", tag="Things", body=Filter, response=ThingOut)
    def wrong_model(thing_id: str) -> ResponseReturnValue:
        web.json_body(ThingIn)  # declares Filter: a contract violation
        return web.ok(reply)

    @bp.get("/undeclared")
    def undeclared() -> ResponseReturnValue:
        return web.ok({"anything": 1})

    app = Flask("t")
    web.register_error_handlers(app)
    app.register_blueprint(bp)
    return app


GOOD = {"id": "5d5b0c0e-4a9e-4d3e-9a57-0d0c0b0a0908", "name": "x",
        "created_at": "2026-11-28T12:00:00Z",
        "owner": {"id": None, "display_name": "Deleted user"}}


@pytest.fixture(autouse=True)
def checking(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(openapi.CHECK_ENV, "1")
    yield


def test_a_matching_response_passes() -> None:
    resp = _app(GOOD).test_client().post("/api/things", json={"name": "x"})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["data"]["owner"]["display_name"] == "Deleted user"


@pytest.mark.parametrize("reply", [
    {**GOOD, "secret": "leaked"},  # an undocumented field
    {k: v for k, v in GOOD.items() if k != "created_at"},  # a documented one missing
    {**GOOD, "owner": {"id": None, "display_name": 3}},  # a wrong type, nested
])
def test_an_undocumented_shape_is_a_server_error(reply: dict[str, Any]) -> None:
    resp = _app(reply).test_client().post("/api/things", json={"name": "x"})
    assert resp.status_code == 500
    assert resp.get_json()["ok"] is False


def test_an_undocumented_status_is_a_server_error() -> None:
    resp = _app(GOOD, status=200).test_client().post("/api/things", json={"name": "x"})
    assert resp.status_code == 500


def test_parsing_another_model_than_declared_is_a_server_error() -> None:
    resp = _app(GOOD).test_client().put("/api/things/1", json={"name": "x"})
    assert resp.status_code == 500


def test_without_checking_nothing_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(openapi.CHECK_ENV)
    resp = _app({**GOOD, "extra": 1}).test_client().post("/api/things", json={"name": "x"})
    assert resp.status_code == 201


def test_query_args_parse_lists_and_paginated_lists_are_checked() -> None:
    client = _app(GOOD).test_client()
    resp = client.get("/api/things?status=open&status=closed&limit=5")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["data"][0]["name"] == "open,closed"
    assert body["meta"] == {"page": 1, "limit": 5, "total": 1, "pages": 1}


def test_query_args_errors_name_the_parameter() -> None:
    class Strict(BaseModel):
        days: int = Field(default=30, ge=1, le=365)

    app = Flask("q")
    web.register_error_handlers(app)

    @app.get("/q")
    def q() -> ResponseReturnValue:
        return web.ok({"days": web.query_args(Strict).days})

    with app.test_client() as client:
        assert client.get("/q?days=7").get_json()["data"] == {"days": 7}
        bad = client.get("/q?days=0")
        assert bad.status_code == 400
        assert "days" in bad.get_json()["error"]


def test_undeclared_routes_are_not_checked() -> None:
    # The document's coverage test (tests/unit/gateway) is what forbids them.
    assert _app(GOOD).test_client().get("/api/undeclared").status_code == 200


def test_declarations_stack_per_method() -> None:
    @openapi.operation("Read", tag="T", methods=["GET"])
    @openapi.operation("Write", tag="T", methods=["POST", "put"])
    def view() -> None: ...

    assert openapi.operation_for(view, "GET").summary == "Read"  # type: ignore[union-attr]
    assert openapi.operation_for(view, "PUT").summary == "Write"  # type: ignore[union-attr]
    assert openapi.operation_for(view, "DELETE") is None
