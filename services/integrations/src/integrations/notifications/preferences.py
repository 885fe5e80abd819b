"""What a user wants to be told, and how: the events, channels and defaults of notifications.

A user's effective choice for (channel, event) in a project is, in order: their override for
that project, their global choice, the default below. Only what the user set is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, get_args

from sqlmodel import Session, col, select

from .models import NotificationPreference, NotificationProjectPreference

# Events users are notified of (decided):
# - bug_assigned: a bug was assigned to you (by someone else);
# - comment_added: someone commented on a bug you reported, are assigned to or commented on;
# - bug_resolved: a bug you take part in was resolved (by someone else);
# - alert_triggered: an alert rule of a project you can see fired.
Event = Literal["bug_assigned", "comment_added", "bug_resolved", "alert_triggered"]
EVENTS: tuple[str, ...] = get_args(Event)
CHANNELS: tuple[str, ...] = ("email", "in_app", "discord_dm")

DEFAULTS: dict[str, dict[str, bool]] = {
    "email": {"bug_assigned": True, "comment_added": True, "bug_resolved": False,
              "alert_triggered": True},
    "in_app": dict.fromkeys(EVENTS, True),
    # Stored and served, but nothing sends Discord direct messages yet (no account linking).
    "discord_dm": dict.fromkeys(EVENTS, False),
}

ChannelMaps = Mapping[str, Mapping[str, bool]]


def maps_of(row: NotificationPreference | NotificationProjectPreference | None
            ) -> dict[str, dict[str, bool]]:
    if row is None:
        return {channel: {} for channel in CHANNELS}
    return {"email": dict(row.email), "in_app": dict(row.in_app),
            "discord_dm": dict(row.discord_dm)}


def effective(stored: ChannelMaps) -> dict[str, dict[str, bool]]:
    """The global choices: what the user set over the defaults, for every event."""
    return {channel: {event: bool(stored.get(channel, {}).get(event, DEFAULTS[channel][event]))
                      for event in EVENTS} for channel in CHANNELS}


def wants(channel: str, event: str, *, stored: ChannelMaps, project: ChannelMaps) -> bool:
    """Whether a user with these stored choices gets `event` on `channel` in that project."""
    for maps in (project, stored):
        value = maps.get(channel, {}).get(event)
        if value is not None:
            return bool(value)
    return DEFAULTS[channel][event]


def recipients_wanting(session: Session, *, user_ids: Iterable[str], project_id: str,
                       channel: str, event: str) -> list[str]:
    """Those of `user_ids` who want `event` on `channel` in the project (order kept)."""
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return []
    stored = {row.user_id: maps_of(row) for row in session.exec(
        select(NotificationPreference).where(col(NotificationPreference.user_id).in_(ids)))}
    per_project = {row.user_id: maps_of(row) for row in session.exec(
        select(NotificationProjectPreference).where(
            NotificationProjectPreference.project_id == project_id,
            col(NotificationProjectPreference.user_id).in_(ids)))}
    empty = maps_of(None)
    return [u for u in ids if wants(channel, event, stored=stored.get(u, empty),
                                    project=per_project.get(u, empty))]
