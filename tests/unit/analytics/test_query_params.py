"""The analytics queries' parameters (`days`, `top`, `status`), parsed by `web.query_args`:
empty means the default, anything else out of range is a 400 naming the parameter."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.typing import ResponseReturnValue
from pydantic import BaseModel

from analytics.crashes.health import TopCrashesQuery, WindowQuery
from analytics.regressions.schemas import RegressionsQuery
from analytics.usage.service import UsageQuery
from bugnet_common import web


def _app(model: type[BaseModel]) -> Flask:
    app = Flask("q")
    web.register_error_handlers(app)

    @app.get("/q")
    def q() -> ResponseReturnValue:
        return web.ok(web.query_args(model).model_dump())

    return app


def _get(model: type[BaseModel], query: str) -> tuple[int, Any]:
    resp = _app(model).test_client().get(f"/q?{query}")
    return resp.status_code, resp.get_json()


@pytest.mark.parametrize(("query", "days", "top"), [
    ("", 30, 10), ("days=&top=", 30, 10), ("days=%20&top=%20", 30, 10),
    ("days=7&top=3", 7, 3), ("days=%207%20", 7, 10), ("days=365&top=100", 365, 100),
    ("days=1&days=400", 1, 10),  # the first of a repeated parameter, as request.args.get
])
def test_defaults_and_values(query: str, days: int, top: int) -> None:
    assert _get(TopCrashesQuery, query) == (200, {"ok": True, "data": {"days": days, "top": top}})


@pytest.mark.parametrize(("query", "field", "message"), [
    ("days=abc", "days", "must be an integer"),
    ("days=1.5", "days", "must be an integer"),
    ("days=0", "days", "must be between 1 and 365"),
    ("days=366", "days", "must be between 1 and 365"),
    ("days=-3", "days", "must be between 1 and 365"),
    ("top=0", "top", "must be between 1 and 100"),
    ("top=x", "top", "must be an integer"),
])
def test_bad_values_are_400_naming_the_parameter(query: str, field: str, message: str) -> None:
    status, body = _get(TopCrashesQuery, query)
    assert status == 400
    assert body["details"] == {field: message}
    assert body["error"] == f"Invalid '{field}': {message}"
    assert body["code"] == "validation_error"


def test_the_window_alone_ignores_top_and_other_parameters() -> None:
    assert _get(WindowQuery, "top=0&page=2&days=5")[1]["data"] == {"days": 5}


def test_api_usage_days_keep_their_message() -> None:
    assert _get(UsageQuery, "days=")[1]["data"] == {"days": 30}
    for bad in ("0", "366", "x"):
        status, body = _get(UsageQuery, f"days={bad}")
        assert status == 400
        assert body["error"] == "Invalid 'days': must be a whole number from 1 to 365"
        assert body["details"] == {"days": "must be a whole number from 1 to 365"}


def test_regression_status_filter() -> None:
    assert _get(RegressionsQuery, "")[1]["data"] == {"status": None}
    assert _get(RegressionsQuery, "status=")[1]["data"] == {"status": None}
    assert _get(RegressionsQuery, "status=dismissed")[1]["data"] == {"status": "dismissed"}
    status, body = _get(RegressionsQuery, "status=fixed")
    assert status == 400
    assert body["details"] == {"status": "must be one of open, confirmed, dismissed"}
