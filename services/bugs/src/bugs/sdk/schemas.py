"""Request shapes of the SDK endpoints, exactly as shipped game clients send them (spec §8).

Shipped SDKs cannot be changed, so these shapes are lenient where the clients differ and strict
where a value would be wrong: `steps_to_reproduce` and `steps` are one field; an empty string
in an optional field means "not given"; unknown fields are ignored; wrong types, unknown enum
values and over-long strings are 400s naming the field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ..enums import Category, Priority
from ..reports.schemas import BugIn

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
# Crash reports carry a stack trace and the game's recent log lines: room for both.
Description = Annotated[str, StringConstraints(max_length=100_000)]
LongText = Annotated[str, StringConstraints(max_length=20_000)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254,
                                         pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Short30 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=30)]
Short50 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)]
Short100 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]
Short200 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


_OPTIONAL_STRINGS = ("platform", "game_version", "os_info", "device_info", "steam_id",
                     "reporter_name", "player_email", "screenshot")
_TEXTS = ("description", "steps_to_reproduce", "steps", "expected", "actual",
          "expected_behavior", "actual_behavior")


class SdkReportIn(BaseModel):
    """POST /api/bugs/submit."""

    model_config = ConfigDict(extra="ignore", strict=True)

    title: Title
    description: Description = ""
    category: Category = "other"
    priority: Priority = "medium"
    steps: LongText = Field(default="", validation_alias=AliasChoices("steps_to_reproduce", "steps"))
    expected: LongText = Field(default="", validation_alias=AliasChoices("expected", "expected_behavior"))
    actual: LongText = Field(default="", validation_alias=AliasChoices("actual", "actual_behavior"))
    platform: Short50 | None = None
    game_version: Short50 | None = None
    os_info: Short100 | None = None
    device_info: Short200 | None = None
    steam_id: Short30 | None = None
    reporter_name: Short100 | None = None
    player_email: Email | None = None
    # A data URI (`data:image/png;base64,...`) or bare base64; decoded and checked by the use case.
    screenshot: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _sdk_leniency(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {k: _storable(v) if isinstance(v, str) and k != "screenshot" else v
                for k, v in data.items()}
        # Clients send "" (or null) for "not known"; neither may fail a pattern or a length.
        for name in _OPTIONAL_STRINGS:
            if data.get(name) == "" or (name in data and data[name] is None):
                data.pop(name)
        for name in _TEXTS:
            if name in data and data[name] is None:
                data.pop(name)
        # Both spellings of the steps may arrive; an empty one must not hide the other.
        if not data.get("steps_to_reproduce") and data.get("steps"):
            data.pop("steps_to_reproduce", None)
        return data

    def bug_in(self) -> BugIn:
        """The report as the bug it files; `platform` in its normalized name."""
        return BugIn.model_construct(
            title=self.title, description=self.description, category=self.category,
            priority=self.priority, steps=self.steps, expected=self.expected,
            actual=self.actual, platform=normalize_platform(self.platform),
            game_version=self.game_version or None, os_info=self.os_info or None,
            device_info=self.device_info or None, player_email=self.player_email,
            reporter_name=self.reporter_name or None,
            reporter_steam_id=self.steam_id or None)


class ReplayForm(BaseModel):
    """The parts of POST /api/session-replays (multipart/form-data)."""
    # Documentation only: the route reads the parts itself (`routes._replay_form`) to read the
    # file no further than its size limit.

    bug_report_id: str = Field(description="The id of the bug the replay belongs to (the "
                                           "`id` a submit answered).")
    duration_sec: float | None = Field(default=None, ge=0,
                                       description="The replay's length in seconds.")
    metadata: str | None = Field(default=None, description="A JSON object, as text.")
    file: bytes = Field(description="The replay: a GIF or a JSON list of events.",
                        json_schema_extra={"format": "binary"})


def _storable(text: str) -> str:
    """`text` as PostgreSQL can store it: without NUL characters (text columns refuse them)
    and without lone surrogates (not encodable as UTF-8), which crash logs sometimes carry."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


_PLATFORMS: dict[str, str] = {
    "win32": "Windows", "win64": "Windows", "windows": "Windows", "cygwin": "Windows",
    "msys": "Windows", "uwp": "Windows",
    "darwin": "macOS", "macos": "macOS", "osx": "macOS", "mac os x": "macOS", "mac": "macOS",
    "linux": "Linux", "linux2": "Linux", "x11": "Linux", "linuxbsd": "Linux",
    "android": "Android",
    "ios": "iOS", "iphoneos": "iOS", "ipados": "iOS",
    "web": "Web", "html5": "Web", "emscripten": "Web", "wasi": "Web", "browser": "Web",
    "webgl": "Web", "webglplayer": "Web",
}


def normalize_platform(name: str | None) -> str | None:
    """The platform's name for breakdowns (§8): win32/Windows → Windows, darwin/macOS/OSX →
    macOS, linux/Linux/X11 → Linux, Android, iOS, Web; others as sent."""
    if not name or not name.strip():
        return None
    key = re.sub(r"\s+", " ", name.strip().lower())
    if key in _PLATFORMS:
        return _PLATFORMS[key]
    # Unity sends RuntimePlatform names: WindowsPlayer, OSXEditor, LinuxPlayer, IPhonePlayer.
    for prefix, normalized in (("windows", "Windows"), ("osx", "macOS"), ("linux", "Linux"),
                               ("iphone", "iOS"), ("android", "Android"), ("webgl", "Web")):
        if key.startswith(prefix):
            return normalized
    return name.strip()
