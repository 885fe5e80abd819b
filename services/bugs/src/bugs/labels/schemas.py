"""Request shapes of the label endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

LabelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Color = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True,
                                         pattern=r"^#[0-9a-fA-F]{6}$")]


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    name: LabelName
    color: Color


class LabelPatch(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    name: LabelName | None = None
    color: Color | None = None


class BugLabelIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    label_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
