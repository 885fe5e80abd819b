"""A whole stack for fault tests, started once per session on free ports, with the SDK rate
class raised (fault tests send continuously from one address). Each test may stop and start
the stack's programs (`stack.supervisor.stop_programs([...])`, `.start(name)`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bugnet_gateway.render import RateLimits
from bugnet_stack import Ports, Stack
from servers import scratch_dir

UNLIMITED = 10_000_000


@pytest.fixture(scope="session")
def fault_stack() -> Iterator[Stack]:
    with scratch_dir("bugnet-faults-") as data_dir:
        s = Stack(data_dir=data_dir, ports=Ports.free(), durable=True,
                  limits=RateLimits(public=UNLIMITED, user=UNLIMITED, login=UNLIMITED),
                  extra_env={"GUNICORN_WORKERS": "1"})
        try:
            s.up(timeout=300)
            yield s
        finally:
            s.down()
