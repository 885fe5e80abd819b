"""The one HTTP client of the CLI: the public API through the gateway, nothing else.

Every response is the spec's envelope; `Api` unwraps it and turns errors into `ApiError`
with the server's message. The gateway limits each client IP per class (spec §3: public —
which includes the SDK endpoints —, user, login); `Api` keeps one `Pacer` per class so a long
run (the demo) spends the bucket at the rate it refills instead of collecting 429s, and still
waits and retries when one comes (`Retry-After`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8080"
MAX_RATE_LIMITED_RETRIES = 20
RETRY_STATUSES = (502, 503)  # the gateway found no upstream: the request was not served
MAX_UNAVAILABLE_RETRIES = 3


class CliError(Exception):
    """A failure to report to the user in one sentence; the command exits non-zero."""


class ApiError(CliError):
    """The API answered with an error envelope."""

    def __init__(self, method: str, path: str, status: int, message: str,
                 code: str | None = None, details: Any = None) -> None:
        super().__init__(f"{method} {path}: {status} {message}")
        self.status = status
        self.message = message
        self.code = code
        self.details = details


@dataclass
class Page:
    items: list[dict[str, Any]]
    total: int


def rate_class(path: str, headers: Mapping[str, str]) -> str:
    """The gateway bucket a request drains (bugnet_gateway.routes.effective_rate_class)."""
    if path.rstrip("/").endswith("/auth/login"):
        return "login"
    return "user" if "authorization" in {k.lower() for k in headers} else "public"


class Pacer:
    """Paces one rate class like the gateway's bucket: a burst of `limit`, then refilled
    continuously at limit/60 tokens a second.

    The client keeps its own estimate of the tokens left — one taken per request it sends,
    the refill added as time passes — and lowers it to what the gateway's answers say
    (`X-RateLimit-Remaining`) when they say less. A request that finds no token reserves the
    next one that refills and waits for it; reservations are made under a lock, so concurrent
    senders queue at the bucket's rate instead of racing into 429s. Until the first answer
    tells the limit, one request goes at a time. Every `reserve()` is followed by one
    `answered()`, whatever became of the request.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 first_answer_timeout: float = 60.0) -> None:
        self._clock = clock
        self._first_answer_timeout = first_answer_timeout
        self._cond = threading.Condition()
        self.limit: int | None = None
        self.tokens: float | None = None  # below zero: reserved ahead of the refill
        self._updated = 0.0
        self._in_flight = 0
        self._answered = False
        self._horizon = 0.0  # when the last reservation made so far can be sent
        # Wall-clock time the pacing added (the horizon's advance past "now"), not the
        # overlapping waits of concurrent senders.
        self.paced_seconds = 0.0
        self.rate_limited = 0

    def _refill(self, now: float) -> None:
        if self.tokens is not None and self.limit:
            elapsed = max(0.0, now - self._updated)
            self.tokens = min(float(self.limit), self.tokens + elapsed * self.limit / 60.0)
        self._updated = now

    def _push_horizon(self, now: float, until: float) -> None:
        self.paced_seconds += max(0.0, until - max(now, self._horizon))
        self._horizon = max(self._horizon, until)

    def reserve(self) -> float:
        """Seconds to wait before sending the next request of this class."""
        with self._cond:
            self._cond.wait_for(lambda: self._answered or self._in_flight == 0,
                                timeout=self._first_answer_timeout)
            self._in_flight += 1
            now = self._clock()
            self._refill(now)
            if self.tokens is None or not self.limit:
                return max(0.0, self._horizon - now)  # a 429's pause, limit still unknown
            self.tokens -= 1
            if self.tokens >= 0:
                return 0.0
            wait = -self.tokens * 60.0 / self.limit
            self._push_horizon(now, now + wait)
            return wait

    def answered(self, headers: Mapping[str, str] | None) -> None:
        """The request reserved last by this sender came back (None: it failed in transit)."""
        limit = _int_header(headers, "x-ratelimit-limit") if headers is not None else None
        remaining = (_int_header(headers, "x-ratelimit-remaining") if headers is not None
                     else None)
        with self._cond:
            self._in_flight = max(0, self._in_flight - 1)
            self._answered = True
            self._refill(self._clock())
            if limit:
                self.limit = limit
            if remaining is not None:
                self.tokens = float(remaining) if self.tokens is None else min(self.tokens,
                                                                               remaining)
            self._cond.notify_all()

    def throttled(self, retry_after: float) -> None:
        """A 429: the retry must not go before `retry_after` seconds."""
        with self._cond:
            self.rate_limited += 1
            now = self._clock()
            self._refill(now)
            rate = (self.limit or 60) / 60.0
            # the retry's reservation (one token) lands at retry_after from now
            self.tokens = min(self.tokens if self.tokens is not None else 0.0,
                              1.0 - retry_after * rate)
            self._push_horizon(now, now + retry_after)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value.split(",")[0].strip())
    except ValueError:
        return None


def retry_after_seconds(resp: httpx.Response, now: float | None = None) -> float:
    """How long a 429 asks to wait: `Retry-After`, else until `X-RateLimit-Reset`, else 1 s."""
    header = resp.headers.get("retry-after")
    if header is not None:
        try:
            return max(float(header), 0.5)
        except ValueError:
            pass
    reset = _int_header(resp.headers, "x-ratelimit-reset")
    if reset is not None:
        now = time.time() if now is None else now
        return min(max(reset - now, 0.5), 60.0)
    return 1.0


class Api:
    """The public API at `base_url` (the gateway), paced per rate class."""

    def __init__(self, base_url: str, *, transport: httpx.BaseTransport | None = None,
                 timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url + "/api", transport=transport,
                                  timeout=timeout,
                                  headers={"User-Agent": "bugnet-cli/0.1"})
        self._sleep = sleep
        self.pacers = {name: Pacer() for name in ("public", "user", "login")}
        self.token: str | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        return f"{self.base_url}/api{path}"

    def request(self, method: str, path: str, *, json: Any = None,
                params: Mapping[str, Any] | None = None, api_key: str | None = None,
                bearer: bool = False, expect: tuple[int, ...] = (200, 201)) -> Any:
        """One API call; the envelope's `data`, or ApiError. Waits out 429s."""
        return self.request_full(method, path, json=json, params=params, api_key=api_key,
                                 bearer=bearer, expect=expect).get("data")

    def request_full(self, method: str, path: str, *, json: Any = None,
                     params: Mapping[str, Any] | None = None, api_key: str | None = None,
                     bearer: bool = False, expect: tuple[int, ...] = (200, 201)
                     ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        if bearer:
            if self.token is None:
                raise CliError("not signed in")
            headers["Authorization"] = f"Bearer {self.token}"
        if api_key is not None:
            headers["X-API-Key"] = api_key
        pacer = self.pacers[rate_class(path, headers)]
        limited = unavailable = 0
        while True:
            wait = pacer.reserve()
            resp: httpx.Response | None = None
            try:
                if wait > 0:
                    self._sleep(wait)
                resp = self._http.request(method, path, json=json, params=params,
                                          headers=headers)
            except httpx.TransportError as exc:
                raise CliError(f"cannot reach Bugnet at {self.base_url} ({exc}); is it running? "
                               "(`make up`, or pass --url / set BUGNET_URL)") from None
            finally:
                pacer.answered(resp.headers if resp is not None else None)
            if resp.status_code == 429 and limited < MAX_RATE_LIMITED_RETRIES:
                limited += 1
                pause = retry_after_seconds(resp)
                pacer.throttled(pause)
                continue
            if resp.status_code in RETRY_STATUSES and unavailable < MAX_UNAVAILABLE_RETRIES:
                unavailable += 1
                self._sleep(1.0 * unavailable)
                continue
            return _unwrap(method, path, resp, expect)

    def list_all(self, path: str, *, params: Mapping[str, Any] | None = None,
                 bearer: bool = True) -> list[dict[str, Any]]:
        """Every item of a paginated list."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.request_full("GET", path, params={**(params or {}), "page": page,
                                                         "limit": 100}, bearer=bearer)
            items.extend(body.get("data") or [])
            meta = body.get("meta") or {}
            if page >= int(meta.get("pages") or 1):
                return items
            page += 1

    def count(self, path: str, params: Mapping[str, Any] | None = None) -> int:
        """The `total` of a paginated list."""
        body = self.request_full("GET", path, params={**(params or {}), "limit": 1},
                                 bearer=True)
        return int((body.get("meta") or {}).get("total") or 0)


def _unwrap(method: str, path: str, resp: httpx.Response, expect: tuple[int, ...]
            ) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        body = None
    if resp.status_code in expect and isinstance(body, dict) and body.get("ok", True):
        return body
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        raise ApiError(method, path, resp.status_code, body["error"], body.get("code"),
                       body.get("details"))
    snippet = resp.text[:200].strip() or resp.reason_phrase
    raise ApiError(method, path, resp.status_code, f"unexpected response: {snippet}")
