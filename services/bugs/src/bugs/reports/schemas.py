"""Request shapes of the bug endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from ..enums import Category, Priority

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
LongText = Annotated[str, StringConstraints(max_length=20_000)]
Short50 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254,
                                         pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class BugIn(BaseModel):
    """A bug as the dashboard creates it (POST /projects/{slug}/bugs)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    title: Title
    description: LongText = ""
    category: Category = "other"
    priority: Priority = "medium"
    steps: LongText = ""
    expected: LongText = ""
    actual: LongText = ""
    platform: Short50 | None = None
    game_version: Short50 | None = None
    os_info: Annotated[str, StringConstraints(max_length=100)] | None = None
    device_info: Annotated[str, StringConstraints(max_length=200)] | None = None
    player_email: Email | None = None
    reporter_name: Annotated[str, StringConstraints(max_length=100)] | None = None
    reporter_steam_id: Annotated[str, StringConstraints(max_length=30)] | None = None
