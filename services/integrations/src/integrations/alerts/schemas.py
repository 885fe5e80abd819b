"""Request shapes of the alert rule endpoints, and what each condition measures.

| condition | fires when (at most once per `window_minutes`) | threshold |
|---|---|---|
| `new_bug` | `threshold` new bugs (matching `filters.priority`/`filters.category`) arrived within the window | count, integer 1-10000, default 1 |
| `new_crash_signature` | `threshold` new crash signatures (SDK crash bugs with a new fingerprint) within the window | count, integer 1-10000, default 1 |
| `crash_spike` | analytics reports a crash spike with at least `threshold` crashed sessions in its window | crashed sessions, integer 1-1000000, default 1 |
| `crash_free_below` | analytics reports a crash-free rate below `threshold` percent | percent, 0 < t <= 100, required |
| `regression_detected` | analytics detects a regression (of `filters.kind`, when given) | none (null) |
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from bugnet_common import errors

Condition = Literal["new_bug", "crash_spike", "crash_free_below", "new_crash_signature",
                    "regression_detected"]
Channel = Literal["email", "in_app", "discord", "webhook"]
# The bugs service's enumerations (spec §5) and analytics' regression kinds, as values on
# the wire.
Priority = Literal["low", "medium", "high", "critical"]
Category = Literal["crash", "visual", "gameplay", "performance", "audio", "ui", "network",
                   "other"]
RegressionKind = Literal["recurrence", "crash_rate", "frame_time"]

CONDITIONS: tuple[str, ...] = get_args(Condition)
CHANNELS: tuple[str, ...] = get_args(Channel)
COUNTING = frozenset({"new_bug", "new_crash_signature"})

# condition -> (minimum, maximum, integer?, default); None: the condition takes no threshold.
THRESHOLDS: dict[str, tuple[float, float, bool, float | None] | None] = {
    "new_bug": (1, 10_000, True, 1),
    "new_crash_signature": (1, 10_000, True, 1),
    "crash_spike": (1, 1_000_000, True, 1),
    "crash_free_below": (0, 100, False, None),
    "regression_detected": None,
}
FILTERS: dict[str, frozenset[str]] = {
    "new_bug": frozenset({"priority", "category"}),
    "new_crash_signature": frozenset({"priority", "category"}),
    "crash_spike": frozenset(),
    "crash_free_below": frozenset(),
    "regression_detected": frozenset({"kind"}),
}
MAX_WINDOW_MINUTES = 7 * 24 * 60


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _unique(value: Any) -> Any:
    # Only a list of strings is de-duplicated; anything else is left for validation to refuse
    # (a list of objects is unhashable: de-duplicating it would be a 500, not a 400).
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(dict.fromkeys(value))
    return value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Channels = Annotated[list[Channel], BeforeValidator(_unique), Field(min_length=1)]
Window = Annotated[int, Field(ge=1, le=MAX_WINDOW_MINUTES)]


class FiltersIn(BaseModel):
    """What a rule looks at; a single value stands for a list of one."""

    model_config = ConfigDict(extra="ignore", strict=True)

    priority: Annotated[list[Priority] | None, BeforeValidator(_listify),
                        BeforeValidator(_unique)] = None
    category: Annotated[list[Category] | None, BeforeValidator(_listify),
                        BeforeValidator(_unique)] = None
    kind: Annotated[list[RegressionKind] | None, BeforeValidator(_listify),
                    BeforeValidator(_unique)] = None

    def given(self) -> dict[str, list[str]]:
        return {name: list(value) for name in ("priority", "category", "kind")
                if (value := getattr(self, name))}


def _default_channels() -> list[Channel]:
    return ["in_app"]


class AlertIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    name: Name
    condition: Condition
    threshold: float | None = None
    window_minutes: Window = 60
    channels: Channels = Field(default_factory=_default_channels)
    filters: FiltersIn | None = None
    enabled: bool = True


class AlertPatch(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    name: Name | None = None
    condition: Condition | None = None
    threshold: float | None = None
    window_minutes: Window | None = None
    channels: Channels | None = None
    filters: FiltersIn | None = None
    enabled: bool | None = None


def _invalid(field: str, msg: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(f"Invalid '{field}': {msg}", details={field: msg})


def checked_threshold(condition: str, threshold: float | None, *, given: bool) -> float | None:
    """The threshold a rule of `condition` keeps: the default when not `given`; 400 naming
    `threshold` when out of range or not taken by the condition."""
    spec = THRESHOLDS[condition]
    if spec is None:
        if given and threshold is not None:
            raise _invalid("threshold", f"{condition} takes no threshold; send null")
        return None
    low, high, integer, default = spec
    if threshold is None:
        if default is None:
            raise _invalid("threshold", f"is required for {condition}")
        return default
    if integer:
        if threshold != int(threshold) or not low <= threshold <= high:
            raise _invalid("threshold", f"must be a whole number from {low:g} to {high:g} for "
                                        f"{condition}")
    elif not low < threshold <= high:
        raise _invalid("threshold", f"must be a percentage above {low:g} and at most {high:g} "
                                    f"for {condition}")
    return float(threshold)


def checked_filters(condition: str, filters: dict[str, list[str]]) -> dict[str, list[str]]:
    """`filters` if `condition` takes them all; 400 naming the first one it does not."""
    for name in filters:
        if name not in FILTERS[condition]:
            takes = ", ".join(sorted(FILTERS[condition])) or "no filters"
            raise _invalid(f"filters.{name}", f"not used by {condition} (it takes {takes})")
    return filters
