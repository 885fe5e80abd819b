"""Request shape of `POST /api/satisfaction` (spec §6)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Text30 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=30)]


class SatisfactionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    bug_id: str
    rating: Annotated[int, Field(strict=True, ge=1, le=5)]
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
    steam_id: Text30 | None = None
    player_email: Annotated[str, StringConstraints(strip_whitespace=True,
                                                   max_length=254)] | None = None
    api_key: str | None = None

    @field_validator("bug_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value.strip()))
        except ValueError:
            raise ValueError("must be a bug id (UUID)") from None

    @field_validator("player_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if not value:
            return None
        local, at, domain = value.rpartition("@")
        if not at or not local or "." not in domain or " " in value:
            raise ValueError("must be an email address")
        return value.lower()
