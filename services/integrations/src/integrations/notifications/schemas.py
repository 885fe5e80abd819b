"""Request shapes of the notification endpoints.

`PUT /api/notifications/preferences` merges: in a channel map, `true`/`false` sets an event and
`null` resets it (to the default globally, to the global choice in a project); a project given
as `null` drops all of that project's overrides. Unknown events are 400 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from bugnet_common import errors

from .preferences import EVENTS


def _known_events(value: dict[str, bool | None] | None) -> dict[str, bool | None] | None:
    if value is not None:
        unknown = sorted(set(value) - set(EVENTS))
        if unknown:
            raise ValueError(f"unknown event '{unknown[0]}'; events are {', '.join(EVENTS)}")
    return value


ChannelMap = Annotated[dict[str, bool | None] | None, AfterValidator(_known_events)]


class ChannelMapsIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    email: ChannelMap = None
    in_app: ChannelMap = None
    discord_dm: ChannelMap = None

    def given(self) -> dict[str, dict[str, bool | None]]:
        return {name: value for name in ("email", "in_app", "discord_dm")
                if (value := getattr(self, name)) is not None}


class PreferencesIn(ChannelMapsIn):
    # project slug -> overrides (null drops them)
    projects: Annotated[dict[str, ChannelMapsIn | None] | None,
                        Field(max_length=500)] = None


_BOOLS = {"true": True, "1": True, "false": False, "0": False}


def _unread(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    parsed = _BOOLS.get(value.lower()) if isinstance(value, str) else None
    if parsed is None:
        # Raised as is (not a ValueError): the 400 keeps its message and details.
        raise errors.ValidationFailed("'unread' must be true or false",
                                      details={"unread": "must be true or false"})
    return parsed


class UnreadFilter(BaseModel):
    model_config = ConfigDict(extra="ignore")

    unread: Annotated[bool | None, BeforeValidator(_unread), Field(description=(
        "true: only unread notifications; false: only read ones; absent: all."))] = None
