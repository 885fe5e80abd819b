"""One HTTP attempt of a delivery, and what its result means.

Shared by the worker's engine (async) and the `test` endpoints (sync, the spec says "now").
The request goes to an address checked by `targets` with the URL's host name as Host header
and TLS SNI (no second DNS lookup between check and connect); redirects are never followed
(a redirect could point anywhere, including inside the network).

Outcome rules (spec §7): 2xx delivered; 408, 429, 5xx, network errors and timeouts are
retried; other statuses (3xx, 4xx) are final. A 429's `Retry-After` header (or Discord's
`retry_after` in the JSON body) sets the next attempt's time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from .. import targets
from ..settings import IntegrationsSettings

USER_AGENT = "Bugnet-Hookshot/1.0"
ERROR_MAX = 500


@dataclass(frozen=True)
class Prepared:
    """What to send: the target, the exact body and the headers."""

    target: targets.Target
    body: bytes
    headers: dict[str, str]
    # Operator-configured endpoint (the Discord base URL of settings): no address checks.
    trusted: bool = False


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    final: bool  # no further attempt (delivered, or a final failure)
    response_code: int | None
    duration_ms: int
    error: str | None
    retry_after: float | None = None  # seconds, when the receiver asked (429)


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the raw body>`, as in X-Bugnet-Signature."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_headers(*, delivery_id: str, event: str, secret: str, body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "User-Agent": USER_AGENT,
            "X-Bugnet-Event": event, "X-Bugnet-Delivery": delivery_id,
            "X-Bugnet-Signature": signature(secret, body)}


def discord_headers() -> dict[str, str]:
    return {"Content-Type": "application/json", "User-Agent": USER_AGENT}


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    value: Any = None
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = None
    if value is None:
        try:
            doc = response.json()
        except (ValueError, UnicodeDecodeError):
            doc = None
        if isinstance(doc, dict):
            value = doc.get("retry_after")
    if isinstance(value, int | float) and value >= 0:
        return min(float(value), 3600.0)
    return None


def classify(response: httpx.Response, duration_ms: int) -> Outcome:
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(True, True, code, duration_ms, None)
    error = f"HTTP {code}"
    if code == 429:
        return Outcome(False, False, code, duration_ms, error, _retry_after(response))
    if code == 408 or code >= 500:
        return Outcome(False, False, code, duration_ms, error)
    if 300 <= code < 400:
        error += " (redirects are not followed)"
    return Outcome(False, True, code, duration_ms, error)


def failure(error: str, duration_ms: int, *, final: bool) -> Outcome:
    return Outcome(False, final, None, duration_ms, error[:ERROR_MAX])


def _request_args(prepared: Prepared, address: targets.IPAddress | None) -> dict[str, Any]:
    target = prepared.target
    if address is None:
        return {"url": target.url, "content": prepared.body, "headers": prepared.headers}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return {"url": target.url_for(address), "content": prepared.body,
            "headers": {**prepared.headers, "Host": target.host_header},
            "extensions": extensions}


def _network_error(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def send_async(client: httpx.AsyncClient, prepared: Prepared,
                     settings: IntegrationsSettings) -> Outcome:
    """One attempt (never raises). Each checked address is tried in turn until one connects."""
    t0 = time.monotonic()
    try:
        addresses: list[targets.IPAddress | None] = [None]
        if not prepared.trusted:
            addresses = list(await targets.resolve_async(prepared.target, settings))
        for i, address in enumerate(addresses):
            try:
                response = await client.post(**_request_args(prepared, address),
                                             timeout=settings.delivery_timeout_seconds)
                break
            except httpx.ConnectError:
                if i == len(addresses) - 1:
                    raise
    except targets.TargetRefused as exc:
        return failure(f"target refused: {exc}", _ms(t0), final=False)
    except Exception as exc:  # network errors, timeouts, TLS: retried
        return failure(_network_error(exc), _ms(t0), final=False)
    return classify(response, _ms(t0))


def send_sync(prepared: Prepared, settings: IntegrationsSettings) -> Outcome:
    """One attempt from a request thread (the test endpoints)."""
    t0 = time.monotonic()
    try:
        addresses: list[targets.IPAddress | None] = [None]
        if not prepared.trusted:
            addresses = list(targets.resolve(prepared.target, settings))
        with httpx.Client(follow_redirects=False, trust_env=False) as client:
            for i, address in enumerate(addresses):
                try:
                    response = client.post(**_request_args(prepared, address),
                                           timeout=settings.delivery_timeout_seconds)
                    break
                except httpx.ConnectError:
                    if i == len(addresses) - 1:
                        raise
    except targets.TargetRefused as exc:
        return failure(f"target refused: {exc}", _ms(t0), final=True)
    except Exception as exc:
        return failure(_network_error(exc), _ms(t0), final=False)
    return classify(response, _ms(t0))


def _ms(t0: float) -> int:
    return int((time.monotonic() - t0) * 1000)


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
