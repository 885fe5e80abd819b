"""Request shapes of the project endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

Slug = Annotated[str, StringConstraints(min_length=3, max_length=64, pattern=r"^[a-z0-9-]+$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Website = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://\S+$")]


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    name: Name
    slug: Slug | None = None
    description: Annotated[str, StringConstraints(max_length=5000)] | None = None
    website: Website | None = None
