"""The gateway's route table as data: the single source of truth for routing, auth and limits.

Invariants:
- A family's ``pattern`` matches the whole path after ``/api/`` or ``/api/v1/`` (query string
  removed). Both prefixes reach the same family and the service always sees ``/api/...``.
- Families are tried in declaration order and the first match wins, as Envoy matches routes.
  Families may overlap only with a later ``fallback`` family (for example the bugs service's
  catch-all under ``projects/{slug}/``); two non-fallback families never share a path.
- Patterns use the regex subset shared by RE2 (Envoy) and Python's ``re`` (no look-around,
  no backreferences), so :func:`resolve` predicts exactly what Envoy does.
- A family with ``methods`` matches only those methods; a later fallback family on the same
  path takes the others. A request no family matches is the gateway's own 404.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Service = Literal["auth", "bugs", "analytics", "integrations"]
# Who answers a family: a service, or the gateway itself (static documents it serves).
Owner = Literal["auth", "bugs", "analytics", "integrations", "gateway"]
AuthMode = Literal["bearer", "optional", "none"]
RateClass = Literal["login", "user", "public"]
BodyCap = Literal["default", "sdk_large"]

SERVICES: tuple[Service, ...] = ("auth", "bugs", "analytics", "integrations")
RATE_CLASSES: tuple[RateClass, ...] = ("public", "user", "login")

MIB = 1024 * 1024
BODY_CAP_BYTES: dict[BodyCap, int] = {"default": 1 * MIB, "sdk_large": 20 * MIB}

SLUG = r"[a-z0-9-]+"
ID = r"[^/]+"
# Everything below a resource, the resource itself included.
SUBTREE = r"(?:/.*)?"

API_PREFIX_PATTERN = r"/api(?:/v1)?/"
_API_PATH = re.compile(rf"^{API_PREFIX_PATTERN}(.*)$")


@dataclass(frozen=True)
class RouteFamily:
    """One group of public paths with one owner, one auth mode and one rate class.

    ``rate_class`` is the class the family is designed for: ``login`` always applies as is;
    ``user`` (bearer routes) and ``public`` are refined per request by
    :func:`effective_rate_class`, because the bucket a request drains depends on whether it
    carries an ``Authorization`` header.
    """

    name: str
    pattern: str
    service: Owner
    auth: AuthMode
    rate_class: RateClass
    methods: tuple[str, ...] | None = None
    body_cap: BodyCap = "default"
    fallback: bool = False
    # For families the gateway answers itself: the file under bugnet_gateway/static it serves.
    static: str | None = None

    def __post_init__(self) -> None:
        if self.auth == "bearer" and self.rate_class != "user":
            raise ValueError(f"{self.name}: bearer routes are in the user rate class")
        if self.auth != "bearer" and self.rate_class == "user":
            raise ValueError(f"{self.name}: only bearer routes are in the user rate class")
        if self.methods is not None and not self.methods:
            raise ValueError(f"{self.name}: methods must be None (any) or non-empty")
        if (self.service == "gateway") != (self.static is not None):
            raise ValueError(f"{self.name}: the gateway's own families, and only they, are static")

    @property
    def body_limit_bytes(self) -> int:
        return BODY_CAP_BYTES[self.body_cap]

    @property
    def envoy_path_regex(self) -> str:
        """The full-path regex Envoy matches (it is anchored by Envoy's full-match semantics)."""
        return f"{API_PREFIX_PATTERN}(?:{self.pattern})"

    def matches_path(self, rest: str) -> bool:
        return re.fullmatch(self.pattern, rest) is not None

    def allows_method(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


def effective_rate_class(family: RouteFamily, *, has_authorization: bool) -> RateClass:
    """The bucket a request drains: login stays login; a token on a user route makes it user."""
    if family.rate_class == "login":
        return "login"
    if has_authorization and family.auth in ("bearer", "optional"):
        return "user"
    return "public"


def _family(
    service: Owner,
    name: str,
    pattern: str,
    auth: AuthMode = "bearer",
    *,
    rate_class: RateClass | None = None,
    methods: tuple[str, ...] | None = None,
    body_cap: BodyCap = "default",
    fallback: bool = False,
    static: str | None = None,
) -> RouteFamily:
    default_class: RateClass = "user" if auth == "bearer" else "public"
    return RouteFamily(
        name=f"{service}.{name}",
        pattern=pattern,
        service=service,
        auth=auth,
        rate_class=rate_class or default_class,
        methods=methods,
        body_cap=body_cap,
        fallback=fallback,
        static=static,
    )


PROJECT = rf"projects/{SLUG}"
PROJECT_BUG = rf"{PROJECT}/bugs/{ID}"

FAMILIES: tuple[RouteFamily, ...] = (
    # §4 auth
    _family("auth", "signup", r"auth/signup", "none"),
    _family("auth", "login", r"auth/login", "none", rate_class="login", methods=("POST",)),
    # Other methods (OPTIONS, a mistaken GET) reach auth for its 405, outside the login bucket.
    _family("auth", "login-other-methods", r"auth/login", "none", fallback=True),
    _family("auth", "logout", r"auth/logout"),
    _family("auth", "me", r"auth/me"),
    _family("auth", "password", r"auth/password"),
    _family("auth", "onboarding", r"auth/onboarding"),
    _family("auth", "export", r"auth/export"),
    _family("auth", "jwks", r"auth/jwks\.json", "none"),
    _family("auth", "config-public", r"config/public", "none"),
    _family("auth", "health", r"health", "none"),
    # The API's own documents, generated by bugnet_gateway.openapi and answered by Envoy.
    _family("gateway", "openapi", r"openapi\.json", "none", methods=("GET", "HEAD"),
            static="openapi.json"),
    _family("gateway", "docs", r"docs/?", "none", methods=("GET", "HEAD"), static="docs.html"),
    # §8 SDK endpoints (project API key, checked by the service)
    _family("bugs", "sdk-submit", r"bugs/submit", "none", body_cap="sdk_large"),
    _family("bugs", "sdk-settings", r"bugs/settings", "none"),
    _family("bugs", "sdk-session-replays", r"session-replays", "none", body_cap="sdk_large"),
    _family("analytics", "sdk-sessions", r"sessions/(?:start|end)", "none"),
    _family("analytics", "sdk-perf-snapshot", r"perf/snapshot", "none"),
    _family("analytics", "sdk-satisfaction", r"satisfaction", "none"),
    # §5 public tracker: anonymous players, but a signed-in user's token is verified
    _family("bugs", "public-tracker", rf"{PROJECT}/public{SUBTREE}", "optional"),
    _family("bugs", "upvote", rf"{PROJECT_BUG}/upvote", "optional"),
    # §6 analytics under a project
    _family("analytics", "dashboards", rf"{PROJECT}/analytics{SUBTREE}", "bearer"),
    _family("analytics", "regressions", rf"{PROJECT}/regressions{SUBTREE}", "bearer"),
    _family("analytics", "bug-performance", rf"{PROJECT_BUG}/performance", "bearer"),
    # §7 integrations under a project, and per-user notifications
    _family("integrations", "webhooks", rf"{PROJECT}/webhooks{SUBTREE}", "bearer"),
    _family("integrations", "integrations", rf"{PROJECT}/integrations{SUBTREE}", "bearer"),
    _family("integrations", "alerts", rf"{PROJECT}/alerts{SUBTREE}", "bearer"),
    _family("integrations", "git-issue", rf"{PROJECT_BUG}/git-issue", "bearer"),
    _family("integrations", "notifications", rf"notifications{SUBTREE}", "bearer"),
    # §5 projects, bugs, labels, team, tracker settings, changelogs, branding
    _family("bugs", "projects", r"projects", "bearer"),
    _family("bugs", "invitation-accept", rf"invitations/{ID}/accept", "bearer"),
    _family("bugs", "project", rf"{PROJECT}{SUBTREE}", "bearer", fallback=True),
)


def split_api_path(path: str) -> str | None:
    """The part of a request path after ``/api/`` or ``/api/v1/``; None outside the API."""
    found = _API_PATH.match(path.split("?", 1)[0])
    return found.group(1) if found else None


def resolve(method: str, path: str) -> RouteFamily | None:
    """The family Envoy routes ``method path`` to, or None for the gateway's own 404."""
    rest = split_api_path(path)
    if rest is None:
        return None
    for family in FAMILIES:
        if family.matches_path(rest) and family.allows_method(method):
            return family
    return None


def families_for(service: Owner) -> tuple[RouteFamily, ...]:
    return tuple(f for f in FAMILIES if f.service == service)
