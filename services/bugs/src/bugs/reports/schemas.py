"""Request shapes of the bug endpoints, and the list filters parsed from a query string."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from bugnet_common import errors

from ..enums import CATEGORIES, PRIORITIES, SORTS, STATUSES, Category, Priority, Status

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
LongText = Annotated[str, StringConstraints(max_length=20_000)]
Short50 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254,
                                         pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Uuid = Annotated[str, StringConstraints(
    strip_whitespace=True, to_lower=True,
    pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
MAX_BULK = 500
CommentBody = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                               max_length=10_000)]


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


class BugPatch(BaseModel):
    """The editable fields of a bug (PATCH or PUT). Only the fields sent change; `assignee`
    sent as null unassigns."""
    # Callers read `model_fields_set`, not the None defaults.

    model_config = ConfigDict(extra="ignore", strict=True)

    title: Title | None = None
    description: LongText | None = None
    steps: LongText | None = None
    expected: LongText | None = None
    actual: LongText | None = None
    status: Status | None = None
    priority: Priority | None = None
    category: Category | None = None
    assignee: Uuid | None = None
    is_public: bool | None = None
    platform: Short50 | None = None
    game_version: Short50 | None = None

    def changes(self) -> dict[str, object]:
        """The fields the client sent, by name. Fields that cannot be empty ignore a null."""
        nullable = {"assignee", "platform", "game_version"}
        return {name: getattr(self, name) for name in self.model_fields_set
                if getattr(self, name) is not None or name in nullable}


class BulkIn(BaseModel):
    """POST /bugs/bulk: one change applied to many bugs, all or nothing."""

    model_config = ConfigDict(extra="ignore", strict=True)

    bug_ids: Annotated[list[Uuid], Field(min_length=1, max_length=MAX_BULK)]
    status: Status | None = None
    priority: Priority | None = None
    assignee: Uuid | None = None

    def changes(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in ("status", "priority", "assignee")
                if name in self.model_fields_set
                and (getattr(self, name) is not None or name == "assignee")}


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    body: CommentBody
    internal: bool = False


class SimilarIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    title: Title
    description: LongText = ""


class BugListQuery(BaseModel):
    """The filters and sort of GET /projects/{slug}/bugs."""
    # Values are taken as text here and judged by `filters_from_args`, whose 400s name the
    # parameter (page and limit are read apart).

    model_config = ConfigDict(extra="ignore")

    status: str | None = Field(default=None, description=(
        "Comma-separated statuses: " + ", ".join(STATUSES)))
    priority: str | None = Field(default=None, description=(
        "Comma-separated priorities: " + ", ".join(PRIORITIES)))
    category: str | None = Field(default=None, description=(
        "Comma-separated categories: " + ", ".join(CATEGORIES)))
    assignee: str | None = Field(default=None, description="A user id, `me` or `none`.")
    label: str | None = Field(default=None, description="A label id or name (at most 50 "
                                                          "characters).")
    platform: str | None = Field(default=None, description="At most 50 characters; "
                                                             "case-insensitive.")
    game_version: str | None = Field(default=None, description="At most 50 characters.")
    search: str | None = Field(default=None, description=(
        "Words matched in title, description, steps and comments (at most 200 characters); "
        "results are ranked by relevance unless `sort` is given."))
    sort: str | None = Field(default=None, description="One of: " + ", ".join(SORTS)
                             + " (default newest).")

    def args(self) -> dict[str, str]:
        """The parameters sent, as `filters_from_args` reads them."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


@dataclass(frozen=True)
class BugFilters:
    """The filters and sort of GET /bugs, validated."""

    statuses: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    assignee: str | None = None  # a user id, "me" (resolved by the route) or "none"
    label: str | None = None  # an id or a name
    platform: str | None = None
    game_version: str | None = None
    search: str | None = None
    sort: str | None = None  # None: newest first, or by relevance when searching


def _enum_list(args: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    raw = args.get(name)
    if raw is None or raw.strip() == "":
        return ()
    values = tuple(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
    bad = [v for v in values if v not in allowed]
    if bad:
        msg = f"unknown value '{bad[0]}'; expected one of: {', '.join(allowed)}"
        raise errors.ValidationFailed(f"Invalid '{name}': {msg}", details={name: msg})
    return values


def _text(args: Mapping[str, str], name: str, max_length: int) -> str | None:
    raw = args.get(name)
    if raw is None:
        return None
    value = raw.strip()
    if len(value) > max_length:
        msg = f"must be at most {max_length} characters"
        raise errors.ValidationFailed(f"Invalid '{name}': {msg}", details={name: msg})
    return value or None


def filters_from_args(args: Mapping[str, str], *, me: str) -> BugFilters:
    """Parse GET /bugs's query string; 400 naming the field for unknown enum values."""
    sort = _text(args, "sort", 20)
    if sort is not None and sort not in SORTS:
        msg = f"unknown value '{sort}'; expected one of: {', '.join(SORTS)}"
        raise errors.ValidationFailed(f"Invalid 'sort': {msg}", details={"sort": msg})
    assignee = _text(args, "assignee", 36)
    if assignee is not None:
        assignee = assignee.lower()
        if assignee == "me":
            assignee = me
        elif assignee != "none" and not is_uuid(assignee):
            msg = "must be a user id, 'me' or 'none'"
            raise errors.ValidationFailed(f"Invalid 'assignee': {msg}", details={"assignee": msg})
    return BugFilters(
        statuses=_enum_list(args, "status", STATUSES),
        priorities=_enum_list(args, "priority", PRIORITIES),
        categories=_enum_list(args, "category", CATEGORIES),
        assignee=assignee,
        label=_text(args, "label", 50),
        platform=_text(args, "platform", 50),
        game_version=_text(args, "game_version", 50),
        search=_text(args, "search", 200),
        sort=sort,
    )
