"""What the e2e tests share: credentials, sign-up and envelope assertions."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

PASSWORD = "correct horse battery"


def email() -> str:
    return f"e2e-{uuid.uuid4().hex[:10]}@example.com"


def signup(api: httpx.Client) -> tuple[str, dict, str]:
    addr = email()
    resp = api.post("/auth/signup", json={"email": addr, "password": PASSWORD,
                                          "display_name": "Player One"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    return body["data"]["token"], body["data"]["user"], addr


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_envelope_error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["ok"] is False and isinstance(body["error"], str) and body["error"]
    return body


def assert_rate_headers(resp: httpx.Response) -> None:
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert name in resp.headers, f"{name} missing on {resp.status_code}"
    reset = int(resp.headers["X-RateLimit-Reset"])
    assert time.time() - 5 <= reset <= time.time() + 65


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition",
             step: float = 0.1) -> Any:
    """Polls `check` every `step` s until it returns something truthy, and returns that;
    AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(step)
