"""The integrations service's route declarations (issue 6): every route declares itself, the
query models keep the handlers' 400s, and the document shows what these routes answer."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from flask import Flask
from flask.typing import ResponseReturnValue
from pydantic import BaseModel

from bugnet_common import web
from bugnet_gateway import openapi as document_builder
from integrations.notifications.schemas import UnreadFilter
from integrations.steam.schemas import DashboardQuery


@cache
def routes() -> tuple[document_builder.Route, ...]:
    return tuple(r for r in document_builder.service_routes() if r.service == "integrations")


@cache
def document() -> dict[str, Any]:
    return document_builder.build_document(list(routes()))


def operation(method: str, path: str) -> dict[str, Any]:
    return document()["paths"][path][method]  # type: ignore[no-any-return]


def test_every_integrations_route_is_declared() -> None:
    assert len(routes()) == 40
    assert [f"{r.method} {r.rule}" for r in routes() if r.operation is None] == []


def test_creating_routes_document_201_and_replacing_ones_200_too() -> None:
    for method in ("post", "put"):
        assert {"200", "201"} <= set(operation(method, "/api/projects/{slug}/integrations/discord")
                                     ["responses"])
    assert {"200", "201"} <= set(operation("post", "/api/projects/{slug}/integrations/git")
                                 ["responses"])
    steam = operation("post", "/api/projects/{slug}/integrations/steam")["responses"]
    assert "201" in steam and "200" not in steam and "409" in steam


def test_calls_to_external_services_document_502() -> None:
    assert "502" in operation("post", "/api/projects/{slug}/bugs/{bug_id}/git-issue")["responses"]
    assert "502" in operation("post", "/api/projects/{slug}/integrations/steam/sync")["responses"]
    assert "BadGateway" in document()["components"]["responses"]


def test_the_notification_list_documents_its_unread_count_in_meta() -> None:
    ok = operation("get", "/api/notifications")["responses"]["200"]
    meta = ok["content"]["application/json"]["schema"]["properties"]["meta"]
    name = meta["$ref"].rsplit("/", 1)[1]
    schema = document()["components"]["schemas"][name]
    assert set(schema["required"]) == {"page", "limit", "total", "pages", "unread"}
    params = [p["name"] for p in operation("get", "/api/notifications")["parameters"]]
    assert params == ["page", "limit", "unread"]


def test_secrets_are_documented_as_never_returned() -> None:
    schemas = document()["components"]["schemas"]
    assert "secret" not in schemas["WebhookOut"]["required"]  # shown once, at creation
    for name in ("GitIntegrationOut", "SteamIntegrationOut"):
        assert not {"token", "api_key"} & set(schemas[name]["properties"]), name


def _query_app(model: type[BaseModel]) -> Flask:
    app = Flask("q")
    web.register_error_handlers(app)

    @app.get("/q")
    def q() -> ResponseReturnValue:
        return web.ok(web.query_args(model).model_dump())

    return app


@pytest.mark.parametrize(("query", "days"), [("", 30), ("?days=", 30), ("?days=7", 7),
                                             ("?days=365", 365)])
def test_dashboard_days_parse(query: str, days: int) -> None:
    resp = _query_app(DashboardQuery).test_client().get("/q" + query)
    assert resp.get_json()["data"] == {"days": days}


@pytest.mark.parametrize("raw", ["0", "366", "abc", "-1", "7.5"])
def test_dashboard_days_out_of_range_keep_their_message(raw: str) -> None:
    resp = _query_app(DashboardQuery).test_client().get("/q", query_string={"days": raw})
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["error"] == "'days' must be an integer between 1 and 365"
    assert body["details"] == {"days": "must be between 1 and 365"}


@pytest.mark.parametrize(("raw", "unread"), [("true", True), ("TRUE", True), ("1", True),
                                             ("false", False), ("0", False), ("", None)])
def test_unread_filter_parses(raw: str, unread: bool | None) -> None:
    resp = _query_app(UnreadFilter).test_client().get("/q", query_string={"unread": raw})
    assert resp.get_json()["data"] == {"unread": unread}


@pytest.mark.parametrize("raw", ["maybe", "yes", "2"])
def test_unread_filter_refuses_other_values_with_its_message(raw: str) -> None:
    resp = _query_app(UnreadFilter).test_client().get("/q", query_string={"unread": raw})
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "'unread' must be true or false"
    assert resp.get_json()["details"] == {"unread": "must be true or false"}


def test_only_the_list_and_the_dashboard_take_query_parameters() -> None:
    declared = {r.endpoint: r.operation.query for r in routes()
                if r.operation is not None and r.operation.query is not None}
    assert declared == {
        "integrations.notifications.list_notifications": UnreadFilter,
        "integrations.steam.steam_dashboard": DashboardQuery,
    }
