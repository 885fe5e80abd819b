"""Request and response shapes of the auth api, validated at the edge."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from typing_extensions import TypedDict

from bugnet_common.bus.events import isoformat
from bugnet_common.openapi import Timestamp, Uuid

from .models import User

COMMON_PASSWORDS = frozenset({
    "password", "password1", "password123", "12345678", "123456789", "1234567890",
    "qwertyui", "qwerty123", "11111111", "00000000", "iloveyou", "abc12345", "letmein1",
    "welcome1", "admin123", "passw0rd", "sunshine", "football", "baseball", "trustno1",
    "87654321", "asdfghjk", "zaq12wsx", "qwertyuiop", "1q2w3e4r", "princess", "superman",
})


def _email(value: str) -> str:
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address ({exc})") from None


def _password(value: str) -> str:
    if len(value) < 8:
        raise ValueError("must be at least 8 characters")
    if value.lower() in COMMON_PASSWORDS or len(set(value)) < 3:
        raise ValueError("is too common or too simple; choose a stronger password")
    return value


def _display_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(_email)]
NewPassword = Annotated[str, StringConstraints(max_length=256), AfterValidator(_password)]
AnyPassword = Annotated[str, StringConstraints(min_length=1, max_length=256)]
DisplayName = Annotated[str, StringConstraints(max_length=100), AfterValidator(_display_name)]
Avatar = Annotated[str, StringConstraints(max_length=2048, pattern=r"^(https?://|data:image/)\S+$")]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class SignupIn(Strict):
    email: Email
    password: NewPassword
    display_name: DisplayName


class LoginIn(Strict):
    # Not validated as an email: a malformed one must get the same 401 as a wrong password.
    email: Annotated[str, StringConstraints(min_length=1, max_length=254)]
    password: AnyPassword


class UpdateMeIn(Strict):
    display_name: DisplayName | None = None
    email: Email | None = None
    avatar: Avatar | None = None


class PasswordIn(Strict):
    current_password: AnyPassword
    new_password: NewPassword


class DeleteMeIn(Strict):
    password: AnyPassword


class OnboardingIn(Strict):
    role: ShortText
    team_size: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                max_length=20)] | int
    platforms: Annotated[list[ShortText], Field(max_length=20)]


class OnboardingOut(TypedDict):
    completed: bool
    role: str | None
    team_size: str | None
    platforms: list[str]


class UserOut(TypedDict):
    id: Uuid
    email: str
    display_name: str
    avatar: str | None
    onboarding: OnboardingOut
    created_at: Timestamp


class SessionIssuedOut(TypedDict):
    token: Annotated[str, Field(description="A bearer token (ES256 JWT) for this new session.")]
    user: UserOut


class ExportPartOut(TypedDict):
    status: Literal["ok", "unavailable"]
    data: NotRequired[Annotated[dict[str, Any], Field(
        description="What the service holds about the user (absent when unavailable).")]]


Section = list[dict[str, Any]]


class AccountExportOut(TypedDict):
    generated_at: Timestamp
    profile: UserOut
    memberships: Annotated[Section, Field(description="Project memberships (from bugs).")]
    bugs: Annotated[Section, Field(description="Bugs the user reported (from bugs).")]
    comments: Annotated[Section, Field(description="Comments the user wrote (from bugs).")]
    services: Annotated[dict[str, ExportPartOut], Field(
        description="Each service's part, by service name.")]
    missing: Annotated[list[str], Field(description="Services that did not answer in time.")]
    complete: bool


def user_out(user: User) -> UserOut:
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "avatar": user.avatar,
        "onboarding": {
            "completed": user.onboarding_completed,
            "role": user.onboarding_role,
            "team_size": user.onboarding_team_size,
            "platforms": list(user.onboarding_platforms or []),
        },
        "created_at": isoformat(user.created_at),
    }
