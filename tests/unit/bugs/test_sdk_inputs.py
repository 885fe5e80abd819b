"""The SDK request shapes and file checks, without servers."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import ValidationError

from bugnet_common import errors
from bugs.sdk.schemas import SdkReportIn, normalize_platform
from bugs.sdk.service import (
    decode_screenshot,
    parse_duration,
    parse_metadata,
    player_key,
    replay_upload,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 40


@pytest.mark.parametrize(("sent", "normalized"), [
    ("win32", "Windows"), ("Windows", "Windows"), ("WindowsPlayer", "Windows"),
    ("darwin", "macOS"), ("macOS", "macOS"), ("OSX", "macOS"), ("OSXPlayer", "macOS"),
    ("linux", "Linux"), ("Linux", "Linux"), ("X11", "Linux"), ("LinuxBSD", "Linux"),
    ("Android", "Android"), ("iOS", "iOS"), ("IPhonePlayer", "iOS"),
    ("Web", "Web"), ("HTML5", "Web"), ("emscripten", "Web"), ("WebGLPlayer", "Web"),
    ("FreeBSD", "FreeBSD"), ("  ", None), (None, None),
])
def test_platform_names_are_normalized_for_breakdowns(sent: str | None, normalized: str | None) -> None:
    assert normalize_platform(sent) == normalized


def test_steps_arrive_under_either_name_and_empty_optionals_mean_not_given() -> None:
    godot = SdkReportIn.model_validate({"title": "t", "steps_to_reproduce": "a", "platform": "X11",
                                        "steam_id": "", "reporter_name": "", "player_email": ""})
    assert godot.steps == "a" and godot.steam_id is None and godot.player_email is None
    bug = godot.bug_in()
    assert bug.steps == "a" and bug.platform == "Linux" and bug.reporter_steam_id is None
    assert SdkReportIn.model_validate({"title": "t", "steps": "b"}).steps == "b"
    both = SdkReportIn.model_validate({"title": "t", "steps_to_reproduce": "a", "steps": "b"})
    assert both.steps == "a"
    nulls = SdkReportIn.model_validate({"title": "t", "description": None, "game_version": None})
    assert nulls.description == "" and nulls.game_version is None


def test_unknown_enums_and_long_strings_fail_naming_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        SdkReportIn.model_validate({"title": "t", "category": "bug", "device_info": "d" * 201,
                                    "steps_to_reproduce": 4})
    fields = {err["loc"][0] for err in info.value.errors()}
    assert fields == {"category", "device_info", "steps_to_reproduce"}


def test_player_key_is_the_steam_id_else_the_name_else_the_device() -> None:
    def key(**fields: str) -> str:
        return player_key(SdkReportIn.model_validate({"title": "t", **fields}).bug_in())

    assert key(steam_id="765", reporter_name="Al") == "steam:765"
    assert key(reporter_name="Al") == "name:Al"
    device = key(platform="win32", os_info="Windows 10", device_info="PC")
    assert device.startswith("device:") and device == key(platform="Windows", os_info="Windows 10",
                                                         device_info="PC")
    assert device != key(platform="Windows", os_info="Windows 11", device_info="PC")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_screenshots_decode_from_data_uris_and_bare_base64() -> None:
    assert decode_screenshot("data:image/png;base64," + _b64(PNG), max_bytes=100).data == PNG
    shot = decode_screenshot("data:image/jpeg;charset=x;base64," + _b64(JPEG), max_bytes=100)
    assert (shot.content_type, shot.extension) == ("image/jpeg", ".jpg")
    # the declared type does not matter, the bytes do
    assert decode_screenshot("data:image/jpeg;base64," + _b64(PNG), max_bytes=100).content_type == "image/png"
    assert decode_screenshot(_b64(PNG).rstrip("="), max_bytes=100).data == PNG
    urlsafe = base64.urlsafe_b64encode(PNG + b"\xfb\xff").decode()
    assert decode_screenshot(urlsafe, max_bytes=100).data == PNG + b"\xfb\xff"


@pytest.mark.parametrize(("raw", "error"), [
    ("data:image/png;base64," + _b64(b"GIF89a" + b"\x00" * 10), errors.ValidationFailed),
    ("data:image/png;base64,****", errors.ValidationFailed),
    ("data:image/png;base64,é" + _b64(PNG), errors.ValidationFailed),
    ("data:application/pdf;base64," + _b64(PNG), errors.ValidationFailed),
    ("data:image/png," + _b64(PNG), errors.ValidationFailed),
    ("data:image/png;base64," + _b64(PNG + b"\x00" * 100), errors.PayloadTooLarge),
    ("data:image/png;base64," + "A" * 10_000, errors.PayloadTooLarge),  # refused before decoding
])
def test_bad_screenshots_are_refused(raw: str, error: type[errors.ApiError]) -> None:
    with pytest.raises(error) as info:
        decode_screenshot(raw, max_bytes=100)
    assert info.value.details == {"screenshot": info.value.details["screenshot"]}  # type: ignore[index]


def test_replays_are_gifs_or_json_event_lists() -> None:
    assert replay_upload(b"GIF87a...").content_type == "image/gif"
    assert replay_upload(b"GIF89a...").content_type == "image/gif"
    assert replay_upload(json.dumps([{"t": 1}]).encode()).content_type == "application/json"
    for bad in (PNG, b'{"t": 1}', b"", b"GIF8", b"\xff\xfe[", b'"text"'):
        with pytest.raises(errors.ValidationFailed):
            replay_upload(bad)


def test_replay_form_fields_parse_or_fail_by_name() -> None:
    assert parse_duration("12") == 12.0 and parse_duration("0.5") == 0.5
    assert parse_duration(None) is None and parse_duration("") is None
    for bad in ("-1", "inf", "nan", "soon"):
        with pytest.raises(errors.ValidationFailed, match="duration_sec"):
            parse_duration(bad)
    assert parse_metadata('{"resolution": "1280x720"}') == {"resolution": "1280x720"}
    assert parse_metadata(None) == {} and parse_metadata(" ") == {}
    for bad in ("[1]", "{", '"x"', '{"a": NaN}', '{"a": "\\u0000"}', '{"a": "\\ud800"}'):
        with pytest.raises(errors.ValidationFailed, match="metadata"):
            parse_metadata(bad)
