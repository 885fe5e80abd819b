"""A whole stack for fault tests, started once per session on free ports, with the SDK rate
class raised (fault tests send continuously from one address). Each test may stop and start
the stack's programs (`stack.supervisor.stop_programs([...])`, `.start(name)`).

BUGNET_FAULTS_STACK_DIR=<data dir> reuses a stack already running there (started with the same
settings, e.g. for repeated runs while investigating) and leaves it running."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bugnet_gateway.render import RateLimits
from bugnet_stack import Ports, Stack
from servers import scratch_dir

UNLIMITED = 10_000_000
EXTRA_ENV = {"GUNICORN_WORKERS": "1",
             # the local webhook receiver of test_faults_under_load.py
             "INTEGRATIONS_ALLOWED_TARGETS": '["127.0.0.0/8"]',
             "INTEGRATIONS_DELIVERY_BACKOFF_BASE_SECONDS": "1"}


def fault_stack_at(data_dir: str, ports: Ports | None = None) -> Stack:
    return Stack(data_dir=data_dir, ports=ports or Ports.free(), durable=True,
                 limits=RateLimits(public=UNLIMITED, user=UNLIMITED, login=UNLIMITED),
                 extra_env=EXTRA_ENV)


@pytest.fixture(scope="session")
def fault_stack() -> Iterator[Stack]:
    existing = os.environ.get("BUGNET_FAULTS_STACK_DIR")
    if existing:
        s = fault_stack_at(existing)
        s.up(timeout=300)  # adopts the running stack's ports; only checks health
        yield s
        return
    with scratch_dir("bugnet-faults-") as data_dir:
        s = fault_stack_at(data_dir)
        try:
            s.up(timeout=300)
            yield s
        finally:
            s.down()
