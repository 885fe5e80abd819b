"""Request and response shapes of the session endpoints (spec §6, §8). Unknown fields are
ignored; wrong types and over-long strings are 400s naming the field."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from typing_extensions import TypedDict

Token = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text30 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=30)]
Text50 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)]
Text100 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class _SdkIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # Read by the route (X-API-Key first); here only type-checked.
    api_key: Annotated[str | None, Field(
        description="The project's API key, when not sent as `X-API-Key`.")] = None


class SessionStartIn(_SdkIn):
    session_token: Token
    platform: Text50 | None = None
    game_version: Text50 | None = None
    device_info: Text200 | None = None
    os_info: Text100 | None = None
    steam_id: Text30 | None = None
    device_id: Text100 | None = None


class SessionEndIn(_SdkIn):
    session_token: Token
    crashed: bool = False


class SessionStartedOut(TypedDict):
    session_token: str


class SessionEndedOut(TypedDict):
    session_token: str
    crashed: Annotated[bool, Field(description="Whether the session crashed (sticky: once "
                                               "crashed, it stays crashed).")]
