"""Small helpers shared by the areas' response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import overload

from bugnet_common.bus.events import isoformat


@overload
def iso(dt: datetime) -> str: ...
@overload
def iso(dt: datetime | None) -> str | None: ...
def iso(dt: datetime | None) -> str | None:
    return None if dt is None else isoformat(dt)
