"""Bearer-token verification every service does (again, behind the gateway).

Tokens are ES256 JWTs signed by the auth service; its public keys come from the JWKS, cached
and refetched when an unknown `kid` appears. A token is refused when its session id is revoked.
"""

from __future__ import annotations

import base64
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from flask import g, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from .errors import ServiceUnavailable, Unauthorized
from .web import parse_json

log = logging.getLogger(__name__)

ALGORITHMS = ["ES256"]


@dataclass(frozen=True)
class Principal:
    user_id: str
    session_id: str
    email: str
    claims: dict[str, Any]


class JwksCache:
    """Fetches the JWKS over HTTP; refreshes every `ttl` seconds or on an unknown kid."""

    def __init__(self, url: str, *, ttl: float = 300.0, min_refetch_interval: float = 5.0,
                 timeout: float = 2.0) -> None:
        self.url = url
        self.ttl = ttl
        self.min_refetch_interval = min_refetch_interval
        self.timeout = timeout
        self._keys: KeySet | None = None
        self._kids: set[str] = set()
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _fetch(self) -> None:
        resp = httpx.get(self.url, timeout=self.timeout)
        resp.raise_for_status()
        doc = resp.json()
        self._keys = KeySet.import_key_set(doc)
        self._kids = {k.get("kid") for k in doc.get("keys", []) if k.get("kid")}
        self._fetched_at = time.monotonic()

    def keys_for(self, kid: str | None) -> KeySet:
        with self._lock:
            age = time.monotonic() - self._fetched_at
            stale = self._keys is None or age > self.ttl
            unknown = kid is not None and kid not in self._kids and age > self.min_refetch_interval
            if stale or unknown:
                try:
                    self._fetch()
                except (httpx.HTTPError, ValueError) as exc:
                    log.warning("JWKS fetch failed", extra={"url": self.url, "error": str(exc)})
                    if self._keys is None:
                        raise ServiceUnavailable("Cannot verify tokens right now") from None
            assert self._keys is not None
            return self._keys


@functools.cache  # the imports are the process's: once is enough, however many apps it builds
def warm_up() -> None:
    """Sign and verify a throwaway token: the first verification imports cryptography's EC
    backend and joserfc's algorithms, and in a fresh worker every request thread then waits on
    that import (seen in profiles of a cold start under load)."""
    key = ECKey.generate_key("P-256")
    jwt.decode(jwt.encode({"alg": "ES256"}, {"sub": "warm-up"}, key), key,
               algorithms=ALGORITHMS)


class JwtVerifier:
    def __init__(self, *, issuer: str, audience: str, keys: Callable[[str | None], KeySet],
                 is_revoked: Callable[[str], bool] | None = None, leeway: int = 30) -> None:
        self.issuer = issuer
        self.audience = audience
        self.keys = keys
        self.is_revoked = is_revoked
        self.leeway = leeway

    def verify(self, token: str) -> Principal:
        try:
            kid = _unverified_kid(token)
            decoded = jwt.decode(token, self.keys(kid), algorithms=ALGORITHMS)
            registry = jwt.JWTClaimsRegistry(
                leeway=self.leeway,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                sub={"essential": True}, sid={"essential": True}, exp={"essential": True},
                iat={"essential": True})
            registry.validate(decoded.claims)
        except (JoseError, ValueError, TypeError, KeyError):
            raise Unauthorized("Invalid or expired token") from None
        claims = decoded.claims
        sid = str(claims["sid"])
        if self.is_revoked is not None and self.is_revoked(sid):
            raise Unauthorized("This session has been signed out")
        return Principal(user_id=str(claims["sub"]), session_id=sid,
                         email=str(claims.get("email", "")), claims=dict(claims))


def _unverified_kid(token: str) -> str | None:
    header_b64 = token.split(".", 1)[0]
    header = parse_json(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    if not isinstance(header, dict):
        raise ValueError("the token header is not a JSON object")
    kid = header.get("kid")
    return str(kid) if kid is not None else None


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def current_principal(verifier: JwtVerifier, *, optional: bool = False) -> Principal | None:
    """The request's verified user; 401 when missing (unless optional) or invalid."""
    cached = g.get("principal")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    token = bearer_token()
    if token is None:
        if optional:
            return None
        raise Unauthorized("Missing bearer token")
    principal = verifier.verify(token)
    g.principal = principal
    return principal
