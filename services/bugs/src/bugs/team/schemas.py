"""Request shapes of the team endpoints."""

from __future__ import annotations

from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, field_validator

from ..access import PERMISSIONS


def _email(value: str) -> str:
    # Normalized and lowercased the way the auth service stores it, so they compare equal.
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address ({exc})") from None


Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(_email)]


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    # `owner` transfers ownership to this member.
    role: Literal["owner", "admin", "member"]


class InvitationIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    email: Email
    # Ownership is never given by invitation: an invitee becomes owner only by transfer.
    role: Literal["admin", "member"] = "member"


class OverridesIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    overrides: dict[str, bool]

    @field_validator("overrides")
    @classmethod
    def _known(cls, value: dict[str, bool]) -> dict[str, bool]:
        unknown = sorted(set(value) - set(PERMISSIONS))
        if unknown:
            raise ValueError(f"unknown permission(s): {', '.join(unknown)}")
        return value
