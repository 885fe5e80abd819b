"""Request shapes of the public tracker, changelog and branding endpoints.

Updates are partial (PUT and PATCH alike): a field left out keeps its value. A field that may
be cleared (tracker title/description, branding values) is cleared by sending `null`; the
others refuse `null` with a 400 naming the field.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from ..enums import Category, Status
from ..reports.schemas import Email, LongText, Title

MAX_CHANGELOG_BUGS = 500
_COLOR = re.compile(r"#[0-9a-f]{6}")
_URL = re.compile(r"https?://[^\s/?#]+\S*", re.IGNORECASE)


def _bug_id(value: str) -> str:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        parsed = None
    # uuid.UUID also takes the 32-digit and braced forms; ids here are always the 36-char one.
    if parsed is None or len(value) != 36:
        raise ValueError("must be a bug id (a UUID)")
    return str(parsed)


def _color(value: str) -> str:
    if not _COLOR.fullmatch(value):
        raise ValueError("must be a color written #rrggbb")
    return value


def _url(value: str) -> str:
    if not _URL.fullmatch(value):
        raise ValueError("must be an http:// or https:// URL")
    return value


TrackerTitle = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
TrackerDescription = Annotated[str, StringConstraints(max_length=5000)]
Version = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
ChangelogTitle = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                  max_length=200)]
BugId = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True),
                  AfterValidator(_bug_id)]
BugIds = Annotated[list[BugId], Field(max_length=MAX_CHANGELOG_BUGS)]
Color = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True),
                  AfterValidator(_color)]
LogoUrl = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2048),
                    AfterValidator(_url)]
SearchText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
PublicSort = Literal["newest", "oldest", "votes", "updated"]


def _refuse_null(value: Any) -> Any:
    # Runs only for values the client sent: a missing field keeps its default (None = keep).
    if value is None:
        raise ValueError("may not be null")
    return value


class TrackerIn(BaseModel):
    """PUT/PATCH /projects/{slug}/tracker: any subset of the settings."""

    model_config = ConfigDict(extra="ignore", strict=True)

    enabled: bool | None = None
    allow_search: bool | None = None
    allow_voting: bool | None = None
    allow_submissions: bool | None = None
    show_categories: bool | None = None
    title: TrackerTitle | None = None
    description: TrackerDescription | None = None

    _no_null = field_validator("enabled", "allow_search", "allow_voting", "allow_submissions",
                               "show_categories", mode="before")(_refuse_null)


class BrandingIn(BaseModel):
    """PUT/PATCH /projects/{slug}/branding: any subset; `null` clears a value."""

    model_config = ConfigDict(extra="ignore", strict=True)

    logo_url: LogoUrl | None = None
    primary_color: Color | None = None
    accent_color: Color | None = None


class ChangelogIn(BaseModel):
    """POST /projects/{slug}/changelogs."""

    model_config = ConfigDict(extra="ignore", strict=True)

    version: Version
    title: ChangelogTitle
    body: LongText = ""
    bug_ids: BugIds = Field(default_factory=list)
    published: bool = False


class ChangelogPatch(BaseModel):
    """PATCH/PUT /projects/{slug}/changelogs/{id}: any subset of the fields."""

    model_config = ConfigDict(extra="ignore", strict=True)

    version: Version | None = None
    title: ChangelogTitle | None = None
    body: LongText | None = None
    bug_ids: BugIds | None = None
    published: bool | None = None

    _no_null = field_validator("version", "title", "body", "bug_ids", "published",
                               mode="before")(_refuse_null)


class PublicBugIn(BaseModel):
    """POST /projects/{slug}/public/bugs: a player's report."""

    model_config = ConfigDict(extra="ignore", strict=True)

    title: Title
    description: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                  max_length=20_000)]
    category: Category = "other"
    player_email: Email | None = None


class PublicBugFilters(BaseModel):
    """The filters and sort of GET /projects/{slug}/public/bugs."""
    # page and limit are read apart (web.page_from_request).

    model_config = ConfigDict(extra="ignore", strict=True)

    status: Status | None = None
    category: Category | None = None
    search: SearchText | None = None
    sort: PublicSort | None = None
