"""Request shape of `POST /api/perf/snapshot` (spec §6, §8)."""

from __future__ import annotations

import json
import math
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from bugnet_common import untrusted

Text50 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)]

# Bounds that no real game reaches; past them a value is a client bug, refused with a 400.
MAX_FPS = 10_000.0
MAX_FRAME_TIME_MS = 600_000.0  # ten minutes
MAX_MEMORY_MB = 10_000_000.0  # ten terabytes
MAX_CUSTOM_METRICS_CHARS = 16_384


def _number(upper: float) -> Any:
    return Field(strict=True, ge=0, le=upper, allow_inf_nan=False)


class PerfSnapshotIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    fps: Annotated[float, _number(MAX_FPS)]
    frame_time_ms: Annotated[float, _number(MAX_FRAME_TIME_MS)]
    memory_used_mb: Annotated[float, _number(MAX_MEMORY_MB)]
    bug_report_id: str | None = None
    custom_metrics: Any = None  # an object, or a JSON-encoded object (checked below)
    platform: Text50 | None = None
    game_version: Text50 | None = None

    @field_validator("bug_report_id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return str(uuid.UUID(value.strip()))
        except ValueError:
            raise ValueError("must be a bug id (UUID)") from None

    @field_validator("custom_metrics")
    @classmethod
    def _metrics(cls, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict | str):
            raise ValueError("must be a JSON object or a JSON-encoded object")
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                value = untrusted.parse_json(value)
            except ValueError:
                raise ValueError("must be a JSON object or a JSON-encoded object") from None
            if not isinstance(value, dict):
                raise ValueError("must be a JSON object or a JSON-encoded object")
        if (problem := untrusted.find_unstorable(value)) is not None:
            raise ValueError(f"{problem[0]} {problem[1]}")
        try:
            text = json.dumps(value, allow_nan=False)
        except ValueError:
            raise ValueError("must not contain NaN or infinite numbers") from None
        if len(text) > MAX_CUSTOM_METRICS_CHARS:
            raise ValueError(f"must be at most {MAX_CUSTOM_METRICS_CHARS} characters of JSON")
        return value


_SCENE_KEYS = ("scene", "scene_name", "current_scene", "level")
_LOAD_MS_KEYS = ("scene_load_ms", "scene_load_time_ms", "load_time_ms")
_LOAD_SECONDS_KEYS = ("scene_load_time", "load_time", "scene_load_seconds")
MAX_SCENE_LOAD_MS = 3_600_000.0


def scene_of(metrics: dict[str, Any]) -> tuple[str | None, float | None]:
    """The scene a snapshot was taken in and that scene's load time in ms, when the game
    reported them in `custom_metrics` (free-form: anything unusable is left out)."""
    scene = next((metrics[k].strip()[:200] for k in _SCENE_KEYS
                  if isinstance(metrics.get(k), str) and metrics[k].strip()), None)
    load: float | None = None
    for keys, scale in ((_LOAD_MS_KEYS, 1.0), (_LOAD_SECONDS_KEYS, 1000.0)):
        for k in keys:
            raw = metrics.get(k)
            if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw):
                value = float(raw) * scale
                if 0 <= value <= MAX_SCENE_LOAD_MS:
                    load = value
                    break
        if load is not None:
            break
    return scene, load
