"""API usage through the whole stack: Envoy → usage collector → NATS → analytics → report.

Requests served by the services, a 429 refused by Envoy's rate limiter and a 401 refused by
its JWT check all show up in GET /api/projects/{slug}/analytics/api-usage within seconds,
attributed to the project by its slug or by the SDK's X-API-Key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from e2e.support import auth, signup

pytestmark = pytest.mark.e2e

PUBLIC_LIMIT = 30  # the spec's default SDK/public class


def _sum(days: list[dict[str, Any]], *path: str) -> int:
    total = 0
    for day in days:
        value: Any = day
        for key in path:
            value = value.get(key, 0) if isinstance(value, dict) else 0
        total += int(value)
    return total


def test_requests_and_refusals_appear_in_api_usage(new_client: Callable[..., httpx.Client]) -> None:
    dashboard = new_client()
    token, _, _ = signup(dashboard)
    created = dashboard.post("/projects", json={"name": "Usage Game"}, headers=auth(token))
    assert created.status_code == 201, created.text
    project = created.json()["data"]
    slug, key = project["slug"], project["api_key"]

    # SDK traffic from one game client (one IP): the public class allows 30 per minute,
    # then Envoy refuses with 429 before the bugs service sees the request.
    game = new_client(prefix="/api/v1")
    statuses = [
        game.get("/bugs/settings", headers={"X-API-Key": key}).status_code
        for _ in range(PUBLIC_LIMIT + 2)
    ]
    served, limited = statuses.count(200), statuses.count(429)
    assert served >= PUBLIC_LIMIT and limited >= 1 and served + limited == len(statuses)

    # A project route without a token: refused by Envoy's JWT check (401).
    anonymous = new_client()
    assert anonymous.get(f"/projects/{slug}/bugs").status_code == 401
    assert dashboard.get(f"/projects/{slug}/labels", headers=auth(token)).status_code == 200

    report: dict[str, Any] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        resp = dashboard.get(f"/projects/{slug}/analytics/api-usage?days=2", headers=auth(token))
        assert resp.status_code == 200, resp.text
        report = resp.json()["data"]
        if _sum(report["days"], "by_group", "sdk") >= served + limited and _sum(
            report["days"], "by_group", "labels"
        ):
            break
        time.sleep(0.5)
    days = report["days"]
    assert len(days) == 2
    assert _sum(days, "by_group", "sdk") == served + limited
    assert _sum(days, "by_group", "labels") == 1
    # The 401 and every 429 were refused by the gateway; the only 429s are the SDK's.
    assert _sum(days, "rate_limited") == limited
    assert _sum(days, "rate_limited_by_gateway") == limited
    assert _sum(days, "refused_by_gateway") == limited + 1
    assert _sum(days, "by_group", "bugs") == 1  # the refused GET .../bugs
    assert report["totals"]["rate_limited"] == limited
    assert report["totals"]["by_status"]["4xx"] >= limited + 1
    assert report["totals"]["requests"] == _sum(days, "requests")
