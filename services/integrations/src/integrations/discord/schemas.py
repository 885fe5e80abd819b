"""Request shapes of the Discord endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ..webhooks.schemas import check_events

Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]

# Without `events`, the ones a channel wants by default: new bugs, resolutions, regressions
# and alerts (updates and comments are chatty; subscribe explicitly).
DEFAULT_EVENTS = ["bug_created", "bug_resolved", "regression_detected", "alert_triggered"]


class DiscordIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    webhook_url: Url
    events: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: list(DEFAULT_EVENTS))
    enabled: bool = True

    _events = field_validator("events")(check_events)


class DiscordPatch(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    webhook_url: Url | None = None
    events: Annotated[list[str], Field(min_length=1)] | None = None
    enabled: bool | None = None

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_events(value)
