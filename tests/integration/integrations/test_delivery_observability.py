"""The delivery engine's side of operations: a delivery keeps the request id of the event that
caused it and logs its attempts with it, and attempts are counted by outcome."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from integration.integrations.receivers import Receiver
from integration.integrations.support import Project, User
from integration.integrations.test_webhooks_delivery import (
    add_hook,
    deliveries,
    publish,
    snapshot,
    wait_until,
)

from bugnet_common import metrics
from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event
from bugnet_common.bus.worker import Worker
from servers import NatsInfo


def attempts_counted(channel: str, outcome: str) -> float:
    found = [v for n, labels, v in metrics.parse_exposition(metrics.exposition().decode())
             if n == "bugnet_webhook_delivery_attempts_total"
             and labels == {"channel": channel, "outcome": outcome}]
    return found[0] if found else 0.0


def retries_counted(channel: str) -> float:
    found = [v for n, labels, v in metrics.parse_exposition(metrics.exposition().decode())
             if n == "bugnet_webhook_delivery_retries_total" and labels == {"channel": channel}]
    return found[0] if found else 0.0


def test_a_delivery_logs_its_attempts_with_the_request_id_of_its_event(
        client: FlaskClient, user: Callable[..., User], project: Callable[..., Project],
        receiver: Callable[..., Receiver], worker: Worker, nats: NatsInfo,
        capsys: pytest.CaptureFixture[str]) -> None:
    owner = user("Owner")
    p = project(owner)
    r = receiver(statuses=[500, 200])
    add_hook(client, owner, p, r.url + "/in", ["bug_created"])
    delivered_before = attempts_counted("webhook", "delivered")
    retried_before = attempts_counted("webhook", "retry")
    retries_before = retries_counted("webhook")

    request_id = "req-obs-0123456789"
    publish(nats.url, Event(type=subjects.BUG_CREATED, source="bugs",
                            data={"bug": snapshot(p), "changes": {}},
                            correlation_id=request_id))
    r.wait_for(2)  # refused once, accepted on the retry
    wait_until(lambda: deliveries(worker.db)[0].status == "delivered")
    (delivery,) = deliveries(worker.db)
    assert delivery.request_id == request_id

    wait_until(lambda: attempts_counted("webhook", "delivered") == delivered_before + 1)
    assert attempts_counted("webhook", "retry") == retried_before + 1
    assert retries_counted("webhook") == retries_before + 1

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()
             if line.startswith("{")]
    logged = [line for line in lines if line.get("message") == "delivery attempt"
              and line.get("delivery_id") == delivery.id]
    assert [line["delivered"] for line in logged] == [False, True]
    assert all(line["request_id"] == request_id for line in logged)
