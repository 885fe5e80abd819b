"""The envelope and error handling every service shares."""

from __future__ import annotations

import pytest
from flask import Flask
from pydantic import BaseModel, Field

from bugnet_common import errors, web
from bugnet_common.settings import ServiceSettings


class Thing(BaseModel):
    name: str = Field(max_length=5)
    count: int = 1


def make_app(**overrides: object) -> Flask:
    settings = ServiceSettings(bus_in_api=False, **overrides)  # type: ignore[arg-type]
    app = web.create_service_app("test", settings)

    @app.post("/things")
    def create_thing():  # type: ignore[no-untyped-def]
        thing = web.json_body(Thing)
        return web.created(thing.model_dump())

    @app.post("/nobody")
    def nobody():  # type: ignore[no-untyped-def]
        return web.ok(web.raw_json(allow_empty=True))

    @app.get("/boom")
    def boom():  # type: ignore[no-untyped-def]
        raise RuntimeError("SELECT secret FROM users")

    @app.get("/conflict")
    def conflict():  # type: ignore[no-untyped-def]
        raise errors.Conflict("Slug taken")

    @app.get("/items")
    def items():  # type: ignore[no-untyped-def]
        page = web.page_from_request()
        return web.paginated([page.offset], page, total=134)

    @app.get("/ip")
    def ip():  # type: ignore[no-untyped-def]
        from flask import g

        return web.ok({"ip": g.client_ip})

    return app


@pytest.fixture()
def client():  # type: ignore[no-untyped-def]
    return make_app().test_client()


def test_valid_body_is_created(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/things", json={"name": "ab", "unknown": 1})
    assert resp.status_code == 201
    assert resp.json == {"ok": True, "data": {"name": "ab", "count": 1}}


def test_malformed_json_is_400_envelope(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/things", data="{not json", content_type="application/json")
    assert resp.status_code == 400
    assert resp.json["ok"] is False and resp.json["error"] == "Malformed JSON body"


def test_wrong_content_type_is_415(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/things", data="name=ab", content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 415
    assert resp.json["code"] == "unsupported_media_type"


def test_non_object_body_is_400(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/things", json=[1, 2])
    assert resp.status_code == 400
    assert "JSON object" in resp.json["error"]


def test_validation_error_names_the_field(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/things", json={"name": "far too long", "count": "x"})
    assert resp.status_code == 400
    body = resp.json
    assert body["code"] == "validation_error"
    assert "'name'" in body["error"]
    assert set(body["details"]) == {"name", "count"}


def test_missing_field_is_reported_as_required(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/things", json={})
    assert resp.status_code == 400
    assert resp.json["details"] == {"name": "is required"}


def test_empty_body_allowed_where_no_body_is_expected(client) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/nobody").json == {"ok": True, "data": {}}
    assert client.post("/nobody", data="", content_type="application/json").status_code == 200


def test_unknown_route_and_method_are_envelopes(client) -> None:  # type: ignore[no-untyped-def]
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.json["code"] == "not_found"
    wrong = client.delete("/things")
    assert wrong.status_code == 405 and wrong.json["ok"] is False


def test_unexpected_error_hides_internals(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/boom")
    assert resp.status_code == 500
    assert resp.json == {"ok": False, "error": "Internal server error", "code": "internal_error"}
    assert b"SELECT" not in resp.data


def test_api_errors_carry_their_status(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/conflict")
    assert resp.status_code == 409
    assert resp.json == {"ok": False, "error": "Slug taken", "code": "conflict"}


def test_body_over_the_cap_is_413() -> None:
    client = make_app(max_body_bytes=2048).test_client()
    resp = client.post("/things", data="x" * 5000, content_type="application/json")
    assert resp.status_code == 413 and resp.json["code"] == "payload_too_large"


def test_pagination_meta_and_bounds(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/items?page=3&limit=10")
    assert resp.json["data"] == [20]
    assert resp.json["meta"] == {"page": 3, "limit": 10, "total": 134, "pages": 14}
    for bad in ("limit=0", "limit=101", "page=abc", "page=0"):
        bad_resp = client.get(f"/items?{bad}")
        assert bad_resp.status_code == 400, bad


def test_request_id_is_echoed_or_generated(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/items", headers={"X-Request-Id": "abc12345-req"}).headers[
        "X-Request-Id"] == "abc12345-req"
    assert len(client.get("/items").headers["X-Request-Id"]) == 32


def test_client_ip_from_gateway_header_only_when_trusted() -> None:
    trusted = make_app().test_client()
    assert trusted.get("/ip", headers={"x-bugnet-client-ip": "203.0.113.9"}).json["data"][
        "ip"] == "203.0.113.9"
    untrusted = make_app(trust_gateway_headers=False).test_client()
    assert untrusted.get("/ip", headers={"x-bugnet-client-ip": "203.0.113.9"}).json["data"][
        "ip"] == "127.0.0.1"


def test_healthz_answers_and_readyz_reports_failed_checks() -> None:
    settings = ServiceSettings(bus_in_api=False)

    def broken() -> None:
        raise ConnectionError("down")

    app = web.create_service_app("test", settings, readiness=[("database", broken)])
    client = app.test_client()
    assert client.get("/healthz").json == {"ok": True, "data": {"status": "ok"}}
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["ok"] is False and "database" in ready.json["error"]
