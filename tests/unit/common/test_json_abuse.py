"""Hostile JSON and query strings at the shared parse sites (issue 7, input abuse): deep
nesting is a 400 (Python's parser raises RecursionError, which was a 500), a query string that
is not UTF-8 is a 400, and a token whose header is not a JSON object is a 401."""

from __future__ import annotations

import base64

import pytest
from flask import Flask, request
from joserfc.jwk import ECKey, KeySet
from pydantic import BaseModel

from bugnet_common import errors, untrusted, web
from bugnet_common.auth import JwtVerifier
from bugnet_common.settings import ServiceSettings


class Thing(BaseModel):
    name: str = "x"


def make_app() -> Flask:
    app = web.create_service_app("test", ServiceSettings(bus_in_api=False))

    @app.post("/things")
    def create_thing():  # type: ignore[no-untyped-def]
        return web.created(web.json_body(Thing).model_dump())

    @app.post("/sniff")
    def sniff():  # type: ignore[no-untyped-def]
        return web.ok({"parsed": request.get_json(silent=True) is not None})

    @app.post("/strict")
    def strict():  # type: ignore[no-untyped-def]
        return web.ok({"type": type(request.get_json()).__name__})

    @app.get("/echo")
    def echo():  # type: ignore[no-untyped-def]
        return web.ok(dict(request.args))

    return app


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_parse_json_refuses_deep_nesting_with_a_value_error() -> None:
    assert untrusted.parse_json(nested(untrusted.MAX_JSON_DEPTH)) is not None
    assert untrusted.parse_json('{"a": ' + "[" * 99 + "]" * 99 + "}") == {"a": untrusted.parse_json(
        "[" * 99 + "]" * 99)}
    for text in (nested(untrusted.MAX_JSON_DEPTH + 1), nested(500_000),
                 ('{"a": ' * 5000 + "1" + "}" * 5000)):
        with pytest.raises(untrusted.JsonTooDeep):
            untrusted.parse_json(text)
    assert issubclass(untrusted.JsonTooDeep, ValueError)
    # wide is fine: many brackets, little depth
    assert len(untrusted.parse_json(b"[" + b",".join([b"[[1]]"] * 10_000) + b"]")) == 10_000


def test_deep_bodies_are_400_envelopes_at_every_flask_parse_site() -> None:
    client = make_app().test_client()
    for path in ("/things", "/strict"):
        resp = client.post(path, data=nested(200_000), content_type="application/json")
        assert resp.status_code == 400, (path, resp.get_data())
        assert resp.get_json()["ok"] is False
    resp = client.post("/things", data=nested(101), content_type="application/json")
    assert "nested too deeply" in resp.get_json()["error"]
    resp = client.post("/sniff", data=nested(200_000), content_type="application/json")
    assert resp.status_code == 200 and resp.get_json()["data"] == {"parsed": False}


def test_query_strings_must_be_utf8() -> None:
    client = make_app().test_client()
    for query in ("q=%ff", "q=%C0%AF", "a=1&b=%ed%a0%80", "%ff=1"):
        resp = client.get(f"/echo?{query}")
        assert resp.status_code == 400, query
        assert resp.get_json()["error"] == "The query string is not valid UTF-8"
    resp = client.get("/echo?q=%C3%A9t%C3%A9+x&r=%zz")
    assert resp.status_code == 200 and resp.get_json()["data"] == {"q": "été x", "r": "%zz"}


def test_a_token_header_that_is_not_a_json_object_is_unauthorized() -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "k1"}, private=True)
    public = KeySet.import_key_set({"keys": [key.as_dict(private=False)]})
    verifier = JwtVerifier(issuer="bugnet", audience="bugnet", keys=lambda _kid: public)
    for header in (b"[]", b"1", b'"kid"', nested(100_000), b"\xff"):
        head = base64.urlsafe_b64encode(header).decode().rstrip("=")
        with pytest.raises(errors.Unauthorized):
            verifier.verify(f"{head}.e30.c2ln")


def test_utf8_encoded_surrogates_in_a_body_are_malformed_unless_the_handler_cleans_them() -> None:
    client = make_app().test_client()
    for body in (b'{"name": "\xed\xa0\x80"}', b'{"\xed\xb0\x80": 1}', b'{"name": "\xff"}'):
        resp = client.post("/things", data=body, content_type="application/json")
        assert resp.status_code == 400, body
        assert resp.get_json()["error"] == "Malformed JSON body"
    with pytest.raises(errors.BadRequest):
        untrusted.loads_json(b'{"a": {"b": "\xed\xa0\x80"}}')
    # a byte-order mark is tolerated, as json.loads tolerates it in bytes
    assert untrusted.loads_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}
    # the SDK submit's own cleaning still sees them (keep_unstorable)
    assert untrusted.loads_json(b'{"a": "\xed\xa0\x80"}', check_text=False) == {"a": "\ud800"}


def test_a_request_id_that_is_not_ascii_is_replaced() -> None:
    client = make_app().test_client()
    resp = client.get("/echo", headers={"X-Request-Id": "\xff\xfe-request-id"})
    assert resp.status_code == 200
    assert resp.headers["X-Request-Id"].isascii() and len(resp.headers["X-Request-Id"]) == 32
    resp = client.get("/echo", headers={"X-Request-Id": "chosen-request-id"})
    assert resp.headers["X-Request-Id"] == "chosen-request-id"
