"""bugnet_common.openapi: `alt_statuses` (a PUT answering 201 when it created, 200 when it
replaced) and `meta` (a list whose meta says more than the page) are checked like the rest."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Blueprint, Flask, request
from flask.typing import ResponseReturnValue
from typing_extensions import TypedDict

from bugnet_common import openapi, web


class ItemOut(TypedDict):
    name: str


class CountedMeta(TypedDict):
    page: int
    limit: int
    total: int
    pages: int
    unread: int


def _app() -> Flask:
    bp = Blueprint("t", __name__, url_prefix="/api")

    @bp.put("/items/<name>")
    @openapi.operation("Set an item", tag="T", response=ItemOut, status=201, alt_statuses=(200,))
    def put_item(name: str) -> ResponseReturnValue:
        return web.ok({"name": name}, int(request.args["status"]))

    @bp.get("/items")
    @openapi.operation("List items", tag="T", response=ItemOut, paginated=True, meta=CountedMeta)
    def list_items() -> ResponseReturnValue:
        meta = {"page": 1, "limit": 20, "total": 1, "pages": 1, "unread": 1}
        if "extra" in request.args:
            meta["extra"] = 1
        return web.ok([{"name": "a"}], meta=meta)

    @bp.get("/plain")
    @openapi.operation("List plainly", tag="T", response=ItemOut, paginated=True)
    def plain() -> ResponseReturnValue:
        return web.ok([{"name": "a"}], meta={"page": 1, "limit": 20, "total": 1, "pages": 1,
                                             "unread": 1})

    app = Flask("t")
    web.register_error_handlers(app)
    app.register_blueprint(bp)
    return app


@pytest.fixture(autouse=True)
def checking(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(openapi.CHECK_ENV, "1")
    yield


@pytest.mark.parametrize(("status", "expected"), [(201, 201), (200, 200), (202, 500)])
def test_alternative_statuses_pass_and_others_do_not(status: int, expected: int) -> None:
    resp = _app().test_client().put(f"/api/items/x?status={status}")
    assert resp.status_code == expected


def test_a_declared_meta_type_documents_the_extra_meta_fields() -> None:
    client = _app().test_client()
    assert client.get("/api/items").status_code == 200
    assert client.get("/api/items?extra=1").status_code == 500  # still closed
    assert client.get("/api/plain").status_code == 500  # PageMeta has no `unread`


def test_the_standalone_schema_uses_the_meta_type() -> None:
    op = openapi.operation_for(_app().view_functions["t.list_items"], "GET")
    assert op is not None
    schema = openapi.success_schema_standalone(op)
    assert schema["properties"]["meta"]["properties"]["unread"] == {"title": "Unread",
                                                                    "type": "integer"}
