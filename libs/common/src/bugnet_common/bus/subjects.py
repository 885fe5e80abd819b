"""Every subject on the wire. Constants, never derived from class names: a rename must not
change the wire. Pattern: bugnet.<producer>.v1.<past_tense_event>."""

from __future__ import annotations

from dataclasses import dataclass

# auth
USER_REGISTERED = "bugnet.auth.v1.user_registered"
USER_UPDATED = "bugnet.auth.v1.user_updated"
USER_DELETED = "bugnet.auth.v1.user_deleted"
SESSION_REVOKED = "bugnet.auth.v1.session_revoked"

# bugs
PROJECT_CREATED = "bugnet.bugs.v1.project_created"
PROJECT_UPDATED = "bugnet.bugs.v1.project_updated"
PROJECT_DELETED = "bugnet.bugs.v1.project_deleted"
API_KEY_ROTATED = "bugnet.bugs.v1.api_key_rotated"
MEMBER_ADDED = "bugnet.bugs.v1.member_added"
MEMBER_UPDATED = "bugnet.bugs.v1.member_updated"
MEMBER_REMOVED = "bugnet.bugs.v1.member_removed"
BUG_CREATED = "bugnet.bugs.v1.bug_created"
BUG_UPDATED = "bugnet.bugs.v1.bug_updated"
BUG_RESOLVED = "bugnet.bugs.v1.bug_resolved"
BUG_REGRESSED = "bugnet.bugs.v1.bug_regressed"
BUG_OCCURRED = "bugnet.bugs.v1.bug_occurred"
BUG_DELETED = "bugnet.bugs.v1.bug_deleted"
COMMENT_ADDED = "bugnet.bugs.v1.comment_added"

# analytics
REGRESSION_DETECTED = "bugnet.analytics.v1.regression_detected"
CRASH_SPIKE_DETECTED = "bugnet.analytics.v1.crash_spike_detected"
CRASH_FREE_RATE_DROPPED = "bugnet.analytics.v1.crash_free_rate_dropped"

# integrations
ALERT_TRIGGERED = "bugnet.integrations.v1.alert_triggered"
WEBHOOK_DELIVERY_FAILED = "bugnet.integrations.v1.webhook_delivery_failed"

# gateway
# every request the gateway answered (served or refused), counted per project, group and status
USAGE_COUNTED = "bugnet.gateway.v1.usage_counted"

# Request/reply, not streamed: the account export gathers each service's part.
EXPORT_REQUESTED = "bugnet.rpc.v1.export_requested"


@dataclass(frozen=True)
class Stream:
    name: str
    subjects: tuple[str, ...]


# One stream per producer, file storage; retention long enough to rebuild read models.
STREAMS: tuple[Stream, ...] = (
    Stream("AUTH", ("bugnet.auth.>",)),
    Stream("BUGS", ("bugnet.bugs.>",)),
    Stream("ANALYTICS", ("bugnet.analytics.>",)),
    Stream("INTEGRATIONS", ("bugnet.integrations.>",)),
    Stream("GATEWAY", ("bugnet.gateway.>",)),
)


def stream_for(subject: str) -> str:
    producer = subject.split(".")[1]
    for stream in STREAMS:
        if stream.name.lower() == producer:
            return stream.name
    raise ValueError(f"no stream for subject {subject!r}")
