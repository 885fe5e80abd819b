"""Pure rules of analytics ingestion: platform names, player identity, snapshot validation."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from analytics.batching import Pending
from analytics.perf.schemas import PerfSnapshotIn, scene_of
from analytics.platforms import normalize_platform
from analytics.sessions.ingest import _fold, player_hash, player_key
from analytics.sessions.schemas import SessionEndIn, SessionStartIn


@pytest.mark.parametrize(("raw", "name"), [
    ("win32", "Windows"), ("Windows", "Windows"), ("WindowsPlayer", "Windows"),
    ("darwin", "macOS"), ("macOS", "macOS"), ("OSX", "macOS"), ("OSXPlayer", "macOS"),
    ("linux", "Linux"), ("Linux", "Linux"), ("X11", "Linux"), ("LinuxBSD", "Linux"),
    ("Android", "Android"), ("iOS", "iOS"), ("IPhonePlayer", "iOS"), ("Web", "Web"),
    ("HTML5", "Web"), ("WebGLPlayer", "Web"), ("  Switch ", "Switch"), ("", ""), (None, ""),
])
def test_platform_spellings_become_one_name(raw: str | None, name: str) -> None:
    assert normalize_platform(raw) == name


def test_a_player_is_their_steam_id_else_device_id_else_their_client() -> None:
    assert player_key({"steam_id": "7", "device_id": "d"}, "Windows") == "steam:7"
    assert player_key({"device_id": "d", "os_info": "x"}, "Windows") == "device:d"
    assert player_key({"os_info": "Win 11", "device_info": "GTX"}, "Windows") == \
        'client:["Windows","Win 11","GTX"]'
    assert player_key({}, "") is None
    assert player_hash(None) is None
    assert player_hash("steam:7") == player_hash("steam:7") != player_hash("steam:8")
    assert -2 ** 63 <= (player_hash("steam:7") or 0) < 2 ** 63


def _item(kind: str, token: str, key: str = "k", crashed: bool = False) -> Pending:
    values = {"session_token": token, "crashed": crashed} if kind == "end" else {
        "session_token": token, "platform": "win32"}
    return Pending(kind=kind, key_hash=key, values=values)


def test_requests_for_one_token_fold_into_one_row_in_arrival_order() -> None:
    batch = [_item("start", "a"), _item("end", "a", crashed=True), _item("end", "a"),
             _item("end", "b"), _item("start", "b"), _item("start", "c", key="other"),
             _item("end", "c", key="k")]
    rows, members, later = _fold(batch, range(len(batch)))
    assert members == {"a": [0, 1, 2], "b": [3, 4], "c": [5]}
    assert later == [6]  # the same token with another key: a second pass
    assert rows["a"]["crashed"] is True and rows["a"]["ended_at"] is not None
    assert rows["a"]["started_by_end"] is False and rows["a"]["platform"] == "Windows"
    assert rows["b"]["started_by_end"] is True and rows["b"]["platform"] == ""


def test_session_bodies_refuse_wrong_types_and_long_strings() -> None:
    assert SessionStartIn.model_validate({"session_token": " t ", "x": 1}).session_token == "t"
    for bad in ({"session_token": ""}, {"session_token": "t", "platform": 5},
                {"session_token": "t" * 201}, {"session_token": "t", "os_info": "o" * 101}):
        with pytest.raises(ValidationError):
            SessionStartIn.model_validate(bad)
    assert SessionEndIn.model_validate({"session_token": "t"}).crashed is False
    with pytest.raises(ValidationError):
        SessionEndIn.model_validate({"session_token": "t", "crashed": "maybe"})


def test_snapshots_take_numbers_only_within_sane_bounds() -> None:
    ok = PerfSnapshotIn.model_validate({"fps": 60, "frame_time_ms": 16.6,
                                        "memory_used_mb": 0, "custom_metrics": "{\"a\": 1}"})
    assert ok.fps == 60.0 and ok.custom_metrics == {"a": 1}
    for field, value in (("fps", "60"), ("fps", 1e9), ("fps", float("nan")),
                         ("memory_used_mb", -1), ("frame_time_ms", True)):
        body = {"fps": 60, "frame_time_ms": 16.6, "memory_used_mb": 1, field: value}
        with pytest.raises(ValidationError):
            PerfSnapshotIn.model_validate(body)


def test_scene_and_its_load_time_come_from_custom_metrics() -> None:
    assert scene_of({"scene": "Forest", "scene_load_ms": 900}) == ("Forest", 900.0)
    assert scene_of({"level": "Boss", "load_time": 1.5}) == ("Boss", 1500.0)
    assert scene_of({"scene": "  ", "scene_load_ms": "slow"}) == (None, None)
    assert scene_of(json.loads('{"scene_name": "Menu", "scene_load_ms": -3}')) == ("Menu", None)
