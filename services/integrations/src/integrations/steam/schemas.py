"""Request shapes of the Steam endpoints. `app_id` is a Steam app id: a positive integer,
sent as a number or a string of digits."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from bugnet_common import errors

MAX_APP_ID = 2**32 - 1
MAX_DAYS = 365
DEFAULT_DAYS = 30


def _app_id(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_APP_ID:
        raise ValueError("must be a numeric Steam app id")
    return value


AppId = Annotated[int, BeforeValidator(_app_id)]
ApiKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=128,
                                          pattern=r"^[A-Za-z0-9]+$")]


class SteamIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    app_id: AppId
    api_key: ApiKey | None = None


class SteamPatch(BaseModel):
    """Fields sent change; `api_key: null` removes the key."""

    model_config = ConfigDict(extra="ignore", strict=True)

    app_id: AppId | None = None
    api_key: ApiKey | None = None


def _days(value: Any) -> Any:
    if value is None or value == "":
        return DEFAULT_DAYS
    if not isinstance(value, str) or not value.isdigit() or not 1 <= int(value) <= MAX_DAYS:
        # Raised as is (not a ValueError): the 400 keeps its message and details.
        raise errors.ValidationFailed(f"'days' must be an integer between 1 and {MAX_DAYS}",
                                      details={"days": f"must be between 1 and {MAX_DAYS}"})
    return int(value)


class DashboardQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    days: Annotated[int, Field(ge=1, le=MAX_DAYS, description=(
        "The trend's and the window's length in days, ending today (UTC).")),
        BeforeValidator(_days)] = DEFAULT_DAYS
