"""Strings PostgreSQL cannot store as text (NUL, unpaired surrogates) are 400s naming the field,
wherever they arrive: a JSON body, a query string, a form."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.typing import ResponseReturnValue

from bugnet_common import errors, untrusted, web


@pytest.mark.parametrize(("body", "field", "message"), [
    (b'{"title": "a\\u0000b"}', "title", untrusted.NUL_MESSAGE),
    (b'{"meta": {"tags": ["ok", "\\ud800"]}}', "meta.tags.1", untrusted.SURROGATE_MESSAGE),
    (b'{"a\\u0000": 1}', "a\x00", untrusted.NUL_MESSAGE),
    (b'["\\udfff"]', "0", untrusted.SURROGATE_MESSAGE),
])
def test_unstorable_strings_are_refused_with_the_path(body: bytes, field: str,
                                                      message: str) -> None:
    with pytest.raises(errors.ValidationFailed) as caught:
        untrusted.loads_json(body)
    assert caught.value.details == {field: message}


@pytest.mark.parametrize("body", [
    b'{"title": "caf\\u00e9 \\ud83d\\ude00", "n": 1}',  # escaped text and a surrogate pair
    '{"title": "café 😀"}'.encode(),
    b'{"path": "C:\\\\u0000dir"}',  # an escaped backslash before "u0000" is just text
])
def test_storable_text_passes(body: bytes) -> None:
    assert isinstance(untrusted.loads_json(body), dict)


def test_malformed_json_is_still_a_plain_400() -> None:
    with pytest.raises(errors.BadRequest, match="Malformed JSON"):
        untrusted.loads_json(b'{"a": "\x00"}')  # a raw control character is not JSON


def test_query_strings_and_forms_with_nul_are_refused() -> None:
    app = Flask("t")
    web.register_error_handlers(app)

    @app.post("/f")
    def form() -> ResponseReturnValue:
        from flask import request
        untrusted.reject_nul(request.args)
        untrusted.reject_nul(request.form)
        return web.ok({"ok": True})

    client = app.test_client()
    assert client.post("/f?q=fine", data={"a": "b"}).status_code == 200
    bad_query = client.post("/f?q=a%00b")
    assert bad_query.status_code == 400 and bad_query.get_json()["details"] == {
        "q": untrusted.NUL_MESSAGE}
    bad_form = client.post("/f", data={"name": "x\x00y"})
    assert bad_form.status_code == 400 and "name" in bad_form.get_json()["error"]
