"""Request shapes of the project endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

Slug = Annotated[str, StringConstraints(min_length=3, max_length=64, pattern=r"^[a-z0-9-]+$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Website = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://\S+$")]
Description = Annotated[str, StringConstraints(max_length=5000)]


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    name: Name
    slug: Slug | None = None
    description: Description | None = None
    website: Website | None = None


class ProjectSettingsIn(BaseModel):
    """The SDK-facing switches. Unlike the rest of a body, an unknown key here is refused:
    a misspelt switch silently ignored would leave a game capturing what its studio turned off."""

    model_config = ConfigDict(extra="forbid", strict=True)

    screenshot_capture: bool = True
    session_capture: bool = False
    auto_file_errors: bool = False
    public_tracker: bool = False


class ProjectUpdate(BaseModel):
    """PATCH/PUT body: only the fields sent change; `null` clears description and website."""

    model_config = ConfigDict(extra="ignore", strict=True)

    name: Name | None = None
    description: Description | None = None
    website: Website | None = None
    settings: ProjectSettingsIn | None = None
    # Accepted so a client may send the project back as it got it; a different value is refused.
    slug: str | None = None

    @field_validator("name", "settings", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Validators run only on values the client sent: an explicit null is refused here.
        if value is None:
            raise ValueError("cannot be null")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, settings reduced to the switches it named."""
        out: dict[str, Any] = {}
        for name in ("name", "description", "website"):
            if name in self.model_fields_set:
                out[name] = getattr(self, name)
        if self.settings is not None:
            out["settings"] = self.settings.model_dump(exclude_unset=True)
        return out
