"""Request bodies of the regressions area."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class RegressionPatch(BaseModel):
    status: Literal["confirmed", "dismissed"]
