"""The whole stack behind Envoy, started once per test session on free ports, for the e2e
and security suites (tests/conftest.py imports these fixtures, so both share one stack).

Rate limits stay at the spec's defaults (30/120/10 per minute): every test talks from its own
loopback source address (127.0.0.x), so each has its own buckets, as distinct players would.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import httpx
import pytest

from bugnet_stack import Ports, Stack, free_port
from servers import scratch_dir

_addresses = itertools.count(10)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with scratch_dir("bugnet-e2e-") as data_dir:
        s = Stack(data_dir=data_dir, ports=Ports.free(), durable=False,
                  extra_env={"GUNICORN_WORKERS": "1",
                             # one log line per request: test_operations_e2e.py follows a
                             # request id from the gateway into the bugs api's log
                             "BUGS_LOG_REQUESTS": "true",
                             # local receivers (127.0.0.x) may be webhook targets
                             "INTEGRATIONS_ALLOWED_TARGETS": '["127.0.0.0/8"]',
                             "INTEGRATIONS_DELIVERY_BACKOFF_BASE_SECONDS": "1",
                             # fake GitHub and Steam servers of the git/steam e2e tests
                             # listen here (test_integrations_more_e2e.py)
                             "INTEGRATIONS_GITHUB_API_URL": f"http://127.0.0.1:{free_port()}",
                             "INTEGRATIONS_STEAM_STORE_URL": f"http://127.0.0.1:{free_port()}"})
        try:
            s.up(timeout=180)
            yield s
        finally:
            s.down()


def _next_address() -> str:
    n = next(_addresses)
    return f"127.0.{n // 250}.{n % 250 + 2}"


@pytest.fixture()
def new_client(stack: Stack) -> Iterator[Callable[..., httpx.Client]]:
    """Make clients bound to fresh loopback addresses (fresh rate-limit buckets)."""
    clients: list[httpx.Client] = []

    def make(prefix: str = "/api", address: str | None = None) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=address or _next_address())
        client = httpx.Client(base_url=stack.urls.gateway + prefix, transport=transport,
                              timeout=15)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture()
def api(new_client: Callable[..., httpx.Client]) -> httpx.Client:
    return new_client()
