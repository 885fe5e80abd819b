"""The served OpenAPI document, its page, and a bounded schemathesis run through the gateway.

The run generates requests for every documented operation from the document itself (about
four examples each, ~500 in all, deterministic), sends them through Envoy as a signed-in
project owner with the project's API key, and requires: no 5xx, every response in the
envelope, and every documented response matching its schema. Path parameters are mostly the
real project and bug (so generated bodies reach the handlers, not only 404s); operations that
would end the session (logout, password change, account or project deletion, key rotation)
get generated values only, so they cannot sabotage the rest of the run. The machinery is
shared with the long run of tests/security/test_input_abuse.py: tests/fuzzing.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from fuzzing import SCHEMA, addresses, check_case, fuzz_world
from hypothesis import HealthCheck, Phase, settings

from bugnet_gateway.openapi import DOC_FILE, PAGE_FILE
from bugnet_gateway.render import STATIC_DIR
from bugnet_stack import Stack


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[dict[str, Any]]:
    # 127.0.220.x: a range no other test's clients use
    with fuzz_world(stack, setup_address="127.0.219.2", source_addresses=addresses(220, 120),
                    label="schemathesis through the gateway") as w:
        yield w


def test_the_document_and_page_are_served_by_the_gateway(stack: Stack) -> None:
    with httpx.Client(base_url=stack.urls.gateway, timeout=15,
                      transport=httpx.HTTPTransport(local_address="127.0.219.3")) as client:
        on_disk = json.loads((STATIC_DIR / DOC_FILE).read_text(encoding="utf-8"))
        for prefix in ("/api", "/api/v1"):
            doc = client.get(f"{prefix}/openapi.json")
            assert doc.status_code == 200
            assert doc.headers["content-type"] == "application/json"
            assert doc.json() == on_disk
            page = client.get(f"{prefix}/docs")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assert page.text == (STATIC_DIR / PAGE_FILE).read_text(encoding="utf-8")
        assert client.post("/api/openapi.json").status_code == 404


@SCHEMA.exclude(tag="Documentation").parametrize()
@settings(max_examples=4, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_fuzzed_requests_get_no_5xx_and_always_the_envelope(
        case: schemathesis.Case, world: dict[str, Any]) -> None:
    check_case(case, world)
