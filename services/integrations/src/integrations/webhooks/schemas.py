"""Request shapes of the webhook endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ..dispatch import EVENTS

Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]
Secret = Annotated[str, StringConstraints(min_length=8, max_length=256)]
Events = Annotated[list[str], Field(min_length=1, max_length=len(EVENTS))]


def check_events(value: list[str]) -> list[str]:
    unknown = [e for e in value if e not in EVENTS]
    if unknown:
        raise ValueError(f"unknown event '{unknown[0]}'; one of: {', '.join(EVENTS)}")
    return sorted(set(value), key=EVENTS.index)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    url: Url
    events: Events
    secret: Secret | None = None
    enabled: bool = True

    _events = field_validator("events")(check_events)


class WebhookPatch(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    url: Url | None = None
    events: Events | None = None
    secret: Secret | None = None
    enabled: bool | None = None

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_events(value)
