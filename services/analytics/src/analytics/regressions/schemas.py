"""Request bodies, query parameters and responses of the regressions area."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from bugnet_common.openapi import Timestamp, Uuid

from .models import STATUSES

RegressionKind = Literal["recurrence", "crash_rate", "frame_time"]
RegressionStatus = Literal["open", "confirmed", "dismissed"]


class RegressionPatch(BaseModel):
    status: Literal["confirmed", "dismissed"]


def _status(raw: Any) -> Any:
    if raw is None or raw == "":
        return None
    if raw not in STATUSES:
        raise PydanticCustomError("enum", f"must be one of {', '.join(STATUSES)}")
    return raw


class RegressionsQuery(BaseModel):
    status: Annotated[RegressionStatus | None, BeforeValidator(_status),
                      Field(description="Only regressions with this status.")] = None


class RegressionOut(TypedDict):
    id: Uuid
    kind: Annotated[RegressionKind, Field(
        description="`recurrence`: a fixed crash back in a newer version; `crash_rate`: the "
                    "crash-free rate fell more than 1 point below the previous version's; "
                    "`frame_time`: p50 frame time 20% worse than the previous version's.")]
    version: str | None
    previous_version: str | None
    bug_id: Annotated[Uuid | None, Field(description="The recurring bug (`recurrence` only).")]
    details: Annotated[dict[str, Any], Field(description="The figures behind the detection.")]
    status: RegressionStatus
    detected_at: Timestamp
    updated_at: Timestamp
