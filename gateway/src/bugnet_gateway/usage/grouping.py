"""What one request counts as: its endpoint group, its project and its status class.

The group comes from the route family ``bugnet_gateway.routes.resolve`` picks for the path
(exactly the route Envoy took), refined by the path for the bugs service's project catch-all.
Groups are the endpoint groups of the spec's api-usage report (§6).
"""

from __future__ import annotations

import re

from bugnet_gateway.routes import FAMILIES, resolve, split_api_path

GROUPS: tuple[str, ...] = (
    "auth",
    "projects",
    "bugs",
    "labels",
    "team",
    "public",
    "sdk",
    "sessions",
    "perf",
    "satisfaction",
    "analytics",
    "regressions",
    "integrations",
    "notifications",
    "other",
)

# Route family name -> group. Families left out here are listed in _BY_SUBPATH_FAMILIES.
FAMILY_GROUPS: dict[str, str] = {
    "auth.signup": "auth",
    "auth.login": "auth",
    "auth.login-other-methods": "auth",
    "auth.logout": "auth",
    "auth.me": "auth",
    "auth.password": "auth",
    "auth.onboarding": "auth",
    "auth.export": "auth",
    "auth.jwks": "auth",
    "auth.config-public": "other",
    "auth.health": "other",
    "gateway.openapi": "other",
    "gateway.docs": "other",
    "bugs.sdk-submit": "sdk",
    "bugs.sdk-settings": "sdk",
    "bugs.sdk-session-replays": "sdk",
    "analytics.sdk-sessions": "sessions",
    "analytics.sdk-perf-snapshot": "perf",
    "analytics.sdk-satisfaction": "satisfaction",
    "bugs.public-tracker": "public",
    "bugs.upvote": "public",
    "analytics.dashboards": "analytics",
    "analytics.regressions": "regressions",
    "analytics.bug-performance": "analytics",
    "integrations.webhooks": "integrations",
    "integrations.integrations": "integrations",
    "integrations.alerts": "integrations",
    "integrations.git-issue": "integrations",
    "integrations.notifications": "notifications",
    "bugs.projects": "projects",
    "bugs.invitation-accept": "team",
}

# The bugs service's catch-all under projects/{slug}: the first path segment after the slug
# names the area (nothing after the slug is the project itself).
_BY_SUBPATH_FAMILIES = frozenset({"bugs.project"})
SUBPATH_GROUPS: dict[str, str] = {
    "": "projects",
    "api-key": "projects",
    "tracker": "projects",
    "branding": "projects",
    "changelogs": "projects",
    "settings": "projects",
    "bugs": "bugs",
    "labels": "labels",
    "team": "team",
    "permissions": "team",
}

_PROJECT_PATH = re.compile(r"^projects/([a-z0-9-]+)(?:/([^/]*))?")

# Every family has a group: a new family without one is a mistake caught at import (and by
# the unit tests), not an "other" silently.
_unmapped = {f.name for f in FAMILIES} - FAMILY_GROUPS.keys() - _BY_SUBPATH_FAMILIES
if _unmapped:  # pragma: no cover - guards future edits of routes.FAMILIES
    raise RuntimeError(f"usage groups missing for route families {sorted(_unmapped)}")


def classify_path(method: str, path: str) -> tuple[str, str | None]:
    """``(group, project_slug)`` of a request; the slug is None outside ``projects/{slug}``."""
    family = resolve(method, path)
    if family is None:
        return "other", None
    rest = split_api_path(path) or ""
    found = _PROJECT_PATH.match(rest)
    slug = found.group(1) if found else None
    if family.name in _BY_SUBPATH_FAMILIES:
        area = (found.group(2) if found else None) or ""
        return SUBPATH_GROUPS.get(area, "projects"), slug
    return FAMILY_GROUPS[family.name], slug


def status_class(code: int) -> str:
    """``"2xx"``… for a real status code; ``"none"`` when no response was sent (code 0)."""
    if 100 <= code <= 599:
        return f"{code // 100}xx"
    return "none"
