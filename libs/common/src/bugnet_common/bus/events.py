"""The one envelope every message carries (CloudEvents names) and the payload contracts.

Payloads are plain data classes; within v1 only additive changes: consumers ignore fields they
do not know, producers never remove or retype one.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..logs import current_request_id


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    type: str  # the subject
    source: str  # producing service
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    version: str = "v1"
    time: str = field(default_factory=lambda: isoformat(utcnow()))
    # The request id of the request (or of the event being handled) that caused this event:
    # left out (or None), it is taken from the logs' context, so every call site that creates
    # an event inside a request or a handler passes the id on without saying so.
    correlation_id: str | None = None

    def __post_init__(self) -> None:
        if self.correlation_id is None:
            object.__setattr__(self, "correlation_id", current_request_id())

    def to_json(self) -> bytes:
        # `data` is plain JSON data already (see `payload`): no deep copy of it on the way out.
        return json.dumps({f.name: getattr(self, f.name) for f in _EVENT_FIELDS},
                          separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Event:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or not {"id", "type", "source", "data"} <= doc.keys():
            raise ValueError("not an event envelope")
        event = cls(type=doc["type"], source=doc["source"], data=doc.get("data") or {},
                    id=doc["id"], version=doc.get("version", "v1"),
                    time=doc.get("time", ""), correlation_id=doc.get("correlation_id"))
        # What was sent, never the decoding context's request id.
        object.__setattr__(event, "correlation_id", doc.get("correlation_id"))
        return event


_EVENT_FIELDS = dataclasses.fields(Event)


def payload(obj: Any) -> dict[str, Any]:
    """A contract instance as plain JSON-able data (what `dataclasses.asdict` gives, without
    its deep copies: contracts hold only JSON values, nested contracts, lists and dicts)."""
    plain = _plain(obj)
    assert isinstance(plain, dict)
    return plain


_SCALARS = (str, int, float, bool, type(None))
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        return value
    cls = type(value)
    names = _FIELD_NAMES.get(cls)
    if names is None and dataclasses.is_dataclass(cls):
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# ---- auth contracts -------------------------------------------------------------------------

@dataclass(frozen=True)
class UserRegistered:
    user_id: str
    email: str
    display_name: str


@dataclass(frozen=True)
class UserUpdated:
    user_id: str
    email: str
    display_name: str
    avatar: str | None
    changes: list[str]


@dataclass(frozen=True)
class UserDeleted:
    user_id: str
    email: str


@dataclass(frozen=True)
class SessionRevoked:
    session_id: str
    user_id: str
    expires_at: int  # unix seconds; the revocation entry is useless after the token expires
    reason: str


@dataclass(frozen=True)
class ExportRequest:
    user_id: str
    email: str


# ---- bugs contracts -------------------------------------------------------------------------

@dataclass(frozen=True)
class ProjectChanged:
    """project_created / project_updated: the project as it now is."""

    project_id: str
    slug: str
    name: str
    api_key_hash: str
    owner_id: str | None
    settings: dict[str, Any]
    changes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ProjectDeleted:
    project_id: str
    slug: str


@dataclass(frozen=True)
class ApiKeyRotated:
    project_id: str
    api_key_hash: str
    previous_hash: str


@dataclass(frozen=True)
class MemberChanged:
    """member_added / member_updated / member_removed."""

    project_id: str
    user_id: str
    role: str | None  # None once removed
    permissions: list[str]


@dataclass(frozen=True)
class BugSnapshot:
    """What consumers need of a bug; `url` is the bug's path in the API."""

    id: str
    project_id: str
    project_slug: str
    number: int
    title: str
    category: str
    priority: str
    status: str
    source: str
    is_public: bool
    platform: str | None
    game_version: str | None
    fingerprint: str | None
    assignee_id: str | None
    reporter_user_id: str | None
    created_at: str
    resolved_at: str | None
    url: str


@dataclass(frozen=True)
class BugChanged:
    """bug_created / bug_updated / bug_resolved / bug_regressed / bug_deleted."""

    bug: BugSnapshot
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)  # field -> {from, to}
    actor_id: str | None = None
    # bug_created of a grouped crash: who hit its first report (as BugOccurred.player_key).
    player_key: str | None = None


@dataclass(frozen=True)
class BugOccurred:
    bug: BugSnapshot
    occurrences: int
    game_version: str | None
    platform: str | None
    player_key: str | None


@dataclass(frozen=True)
class CommentAdded:
    bug: BugSnapshot
    comment_id: str
    body: str
    internal: bool
    author_id: str | None


# ---- analytics contracts --------------------------------------------------------------------

@dataclass(frozen=True)
class RegressionDetected:
    """regression_detected: one new regression (never published twice for the same one)."""

    regression_id: str
    project_id: str
    project_slug: str
    kind: str  # "recurrence", "crash_rate" or "frame_time"
    version: str | None
    previous_version: str | None
    bug_id: str | None
    details: dict[str, Any]
    detected_at: str


@dataclass(frozen=True)
class CrashSpikeDetected:
    """crash_spike_detected: crashed sessions in the last window well above the baseline."""

    project_id: str
    project_slug: str
    window_minutes: int
    sessions: int
    crashed_sessions: int
    baseline_crashed: float  # crashed sessions per window over the preceding day
    detected_at: str


@dataclass(frozen=True)
class CrashFreeRateDropped:
    """crash_free_rate_dropped: the project's crash-free rate over the last window fell."""

    project_id: str
    project_slug: str
    window_minutes: int
    sessions: int
    crashed_sessions: int
    crash_free_rate: float  # percent, exact (not rounded)
    previous_rate: float | None  # the preceding day's rate, percent
    game_version: str | None
    detected_at: str


# ---- integrations contracts -----------------------------------------------------------------

@dataclass(frozen=True)
class AlertTriggered:
    firing_id: str
    alert_id: str
    project_id: str
    project_slug: str
    name: str
    condition: str
    threshold: float | None
    value: float | None
    channels: list[str]
    details: dict[str, Any]
    triggered_at: str


@dataclass(frozen=True)
class WebhookDeliveryFailed:
    """A delivery given up on (final failure or retries exhausted)."""

    delivery_id: str
    webhook_id: str
    project_id: str
    event: str
    attempts: int
    response_code: int | None
    error: str | None


# ---- gateway contracts ----------------------------------------------------------------------

@dataclass(frozen=True)
class UsageCount:
    """Requests of one kind in one UTC day. The project is named by the path's slug
    (project routes) or by the SHA-256 hex of the request's API key (SDK routes); both are
    None for routes outside any project (auth, notifications, unknown paths)."""

    date: str  # YYYY-MM-DD, UTC
    project_slug: str | None
    api_key_hash: str | None
    group: str  # endpoint group: auth, projects, bugs, sdk, sessions, perf, public, analytics, ...
    status_class: str  # "2xx", "3xx", "4xx", "5xx"
    rate_limited: bool  # answered 429 (by the gateway or a service)
    refused_by_gateway: bool  # answered by Envoy itself (no upstream saw it)
    count: int


@dataclass(frozen=True)
class UsageCounted:
    """usage_counted: the gateway's request counts for one flush interval of one instance.
    `id` of the envelope is deterministic per (instance, sequence) so a re-sent batch is
    de-duplicated by JetStream and by consumers' inboxes."""

    instance: str
    sequence: int
    window_start: str
    window_end: str
    counts: list[UsageCount]
