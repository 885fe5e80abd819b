"""Integrations through Envoy: a bug created through the gateway reaches a webhook receiver
signed, and deliveries survive the integrations worker being stopped mid-retry.

The e2e stack allowlists 127.0.0.0/8 for webhook targets and uses a 1 s backoff base
(tests/e2e/conftest.py), so the receivers here are local servers.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import httpx
from e2e.support import auth, signup, wait_for
from integration.integrations.receivers import Receiver

from bugnet_stack import Stack


def project_with_webhook(api: httpx.Client, token: str, url: str,
                         events: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    created = api.post("/projects", json={"name": "Hooked Game"}, headers=auth(token))
    assert created.status_code == 201, created.text
    project = created.json()["data"]
    hooks = f"/projects/{project['slug']}/webhooks"
    # The integrations service learns of the project from bugs' events (eventually).
    wait_for(lambda: api.get(hooks, headers=auth(token)).status_code == 200,
             what="project known to integrations")
    resp = api.post(hooks, json={"url": url, "events": events}, headers=auth(token))
    assert resp.status_code == 201, resp.text
    return project, resp.json()["data"]


def test_a_bug_created_through_the_gateway_reaches_the_webhook_signed(
        new_client: Callable[..., httpx.Client]) -> None:
    api = new_client()
    token, _, _ = signup(api)
    receiver = Receiver().start()
    try:
        project, hook = project_with_webhook(api, token, receiver.url + "/bugnet",
                                             ["bug_created", "comment_added"])
        slug = project["slug"]
        bug = api.post(f"/projects/{slug}/bugs", headers=auth(token), json={
            "title": "Falls through the floor", "category": "gameplay", "priority": "high"})
        assert bug.status_code == 201, bug.text
        bug_id = bug.json()["data"]["id"]
        api.post(f"/projects/{slug}/bugs/{bug_id}/comments", headers=auth(token),
                 json={"body": "internal note: suspect physics", "internal": True})
        api.post(f"/projects/{slug}/bugs/{bug_id}/comments", headers=auth(token),
                 json={"body": "Reproduced on 1.2"})

        got = {r.headers["x-bugnet-event"]: r for r in receiver.wait_for(2, timeout=20)}
        created, commented = got["bug_created"], got["comment_added"]  # in either order
        mac = hmac.new(hook["secret"].encode(), created.body, hashlib.sha256).hexdigest()
        assert created.headers["x-bugnet-signature"] == f"sha256={mac}"
        payload = created.json()
        assert payload["event"] == "bug_created" and payload["project"] == slug
        assert created.headers["x-bugnet-delivery"] == payload["delivery_id"]
        data = payload["data"]
        assert (data["id"], data["number"], data["title"], data["priority"], data["status"]) == (
            bug_id, 1, "Falls through the floor", "high", "open")
        assert data["url"].endswith(f"/api/projects/{slug}/bugs/{bug_id}")
        assert commented.json()["data"]["comment"]["body"] == "Reproduced on 1.2"
        time.sleep(1.0)
        assert len(receiver.requests) == 2  # the internal comment never went out
        assert all(b"suspect physics" not in r.body for r in receiver.requests)

        # The same service under /api/v1: the deliveries log and a ping sent now.
        v1 = new_client("/api/v1")
        log = v1.get(f"/projects/{slug}/webhooks/{hook['id']}/deliveries", headers=auth(token))
        assert log.status_code == 200 and log.json()["meta"]["total"] == 2
        assert {d["status"] for d in log.json()["data"]} == {"delivered"}
        ping = v1.post(f"/projects/{slug}/webhooks/{hook['id']}/test", headers=auth(token))
        assert ping.status_code == 200 and ping.json()["data"]["status"] == "delivered"
        assert receiver.wait_for(3)[2].headers["x-bugnet-event"] == "ping"
    finally:
        receiver.stop()


def test_a_worker_killed_mid_retry_resumes_without_losing_or_doubling_deliveries(
        stack: Stack, new_client: Callable[..., httpx.Client]) -> None:
    """Each delivery's receiver answers 500, 500, then 200. Once every delivery has logged
    its two failed attempts, the integrations worker gets SIGKILL (no chance to clean up);
    supervisord brings it back. Every delivery then succeeds on its third attempt, exactly
    once, with growing delays between attempts, all in the deliveries log."""
    api = new_client()
    token, _, _ = signup(api)
    receiver = Receiver(fail_each=2).start()
    try:
        project, hook = project_with_webhook(api, token, receiver.url, ["bug_created"])
        slug = project["slug"]
        for i in range(3):
            resp = api.post(f"/projects/{slug}/bugs", headers=auth(token),
                            json={"title": f"Bug {i}"})
            assert resp.status_code == 201, resp.text

        def deliveries() -> list[dict[str, Any]]:
            resp = new_client().get(f"/projects/{slug}/webhooks/{hook['id']}/deliveries",
                                    headers=auth(token))
            return resp.json()["data"] if resp.status_code == 200 else []

        wait_for(lambda: (rows := deliveries()) and len(rows) == 3
                 and all(d["attempts"] == 2 for d in rows), timeout=30,
                 what="two failed attempts logged for every delivery")
        worker_pid = stack.supervisor.info("integrations-worker")["pid"]
        stack.supervisor.rpc.supervisor.signalProcess("integrations-worker", "KILL")
        wait_for(lambda: stack.supervisor.info("integrations-worker")["pid"] not in (0, worker_pid)
                 and stack.supervisor.info("integrations-worker")["statename"] == "RUNNING",
                 timeout=30, what="supervisord restarting the killed worker")

        rows = wait_for(lambda: (r := deliveries()) and len(r) == 3
                        and all(d["status"] == "delivered" for d in r) and r,
                        timeout=60, what="every delivery delivered")
        time.sleep(1.0)
        per_delivery: dict[str, list[float]] = {}
        for received in receiver.requests:
            per_delivery.setdefault(received.headers["x-bugnet-delivery"], []).append(received.at)
        assert {k: len(v) for k, v in per_delivery.items()} == {d["id"]: 3 for d in rows}
        assert all(d["attempts"] == 3 and d["response_code"] == 200 for d in rows)
        for times in per_delivery.values():
            first_gap, second_gap = times[1] - times[0], times[2] - times[1]
            assert 0.9 < first_gap < second_gap, (first_gap, second_gap)
    finally:
        receiver.stop()
