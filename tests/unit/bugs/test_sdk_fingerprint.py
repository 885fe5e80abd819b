"""Crash fingerprints: what differs between two reports of one crash is stripped, what tells
two crashes apart is kept."""

from __future__ import annotations

import pytest

from bugs.sdk.fingerprint import (
    MAX_FRAMES,
    crash_message,
    fingerprint,
    is_crash,
    normalize_text,
    stack_frames,
)


@pytest.mark.parametrize(("text", "frames"), [
    ("SCRIPT ERROR: Invalid call.\n   at: take_damage (res://scripts/player.gd:57)\n"
     "   at: _on_hit (res://scripts/enemy.gd:12)",
     ["take_damage @ player.gd", "_on_hit @ enemy.gd"]),
    ("GDScript backtrace (most recent call first):\n    [0] _ready (res://main.gd:5)",
     ["_ready @ main.gd"]),
    ("   At: res://player.gd:42:_process() - Invalid call", ["_process @ player.gd"]),
    ("  at Game.Inventory.Open (System.Int32 slot) [0x00012] in /Users/a/Assets/Inventory.cs:88",
     ["Game.Inventory.Open @ inventory.cs"]),
    ("   at Game.Player.Update(Int32 x) in C:\\src\\Player.cs:line 42", ["Game.Player.Update @ player.cs"]),
    ("Game.Player:Update () (at Assets/Scripts/Player.cs:42)", ["Game.Player:Update @ player.cs"]),
    ('Traceback (most recent call last):\n  File "/home/a/main.py", line 10, in <module>\n    main()\n'
     '  File "/home/a/world.py", line 5, in update\n    1/0\nZeroDivisionError: division by zero',
     ["update @ world.py", "<module> @ main.py"]),  # innermost first
    ("#0  0x00007f3a12345678 in Game::update (this=0x55aa) at src/game.cpp:42\n"
     "#1  0x00007f in ?? () from /lib/x86_64-linux-gnu/libc.so.6",
     ["Game::update @ game.cpp", "?? @ libc.so.<n>"]),
    ("#00 pc 000000000004e7d4  /system/lib64/libc.so (abort+164)", ["abort @ libc.so"]),
    ("    at update (https://game.example/app.js:1:2)\n    at https://game.example/vendor.js:3:4",
     ["update @ app.js", "<anonymous> @ vendor.js"]),
    ("frame #0: 0x0000000100003f2c libgame.dylib`Game::update() + 12", ["Game::update @ libgame.dylib"]),
    ("game.exe!Game::update+0x1a", ["Game::update @ game.exe"]),
])
def test_frames_are_read_from_every_common_engine_format(text: str, frames: list[str]) -> None:
    assert stack_frames(text) == frames


def test_prose_is_not_mistaken_for_frames() -> None:
    assert stack_frames("at least it crashed\n#1 Open the map\nat home in the evening\n"
                        "1. Go to the menu (the main one)") == []


def test_at_most_five_top_frames_count() -> None:
    text = "\n".join(f"  at: f{i} (res://f{i}.gd:{i})" for i in range(9))
    assert len(stack_frames(text)) == MAX_FRAMES
    deep_a = text + "\n  at: caller_a (res://a.gd:1)"
    deep_b = text + "\n  at: caller_b (res://b.gd:1)"
    assert fingerprint(title="[Error] boom", description=deep_a) == \
        fingerprint(title="[Error] boom", description=deep_b)


def test_normalizing_strips_addresses_numbers_ids_and_paths() -> None:
    assert normalize_text(
        "Invalid get index 'hp' at 0x7ffd1234 in /home/x/player.gd:42 id "
        "550e8400-e29b-41d4-a716-446655440000 obj deadbeef01 took 12.5ms") == \
        "invalid get index 'hp' at <hex> in <path>:<n> id <id> obj <hex> took <n>ms"
    assert normalize_text(r"Failed to load C:\Users\bob\level3.tres") == "failed to load <path>"
    assert normalize_text("Cannot open res://levels/3.tscn") == "cannot open <path>"


def test_the_message_prefers_the_untruncated_first_line_of_an_error_description() -> None:
    message = "IndexError: " + "list index out of range " * 10
    title = "[Error] " + message[:120]
    assert crash_message(title, message + "\n\n--- Stack Trace ---\n...") == message.strip()
    assert crash_message("Game froze", "It just froze while I was walking") == "Game froze"
    assert crash_message("Crash on load", "NullReferenceException: boom") == \
        "Crash on load\nNullReferenceException: boom"


def _godot_error(line: int, path: str, when: str, value: int) -> tuple[str, str]:
    message = f"[Script Error] SCRIPT ERROR: Out of bounds get index '{value}' (on base: 'Array')"
    desc = (message + "\n\n--- Stack Trace ---\n"
            f"   at: spawn_wave ({path}/spawner.gd:{line})\n   at: _process ({path}/level.gd:{line + 9})"
            f"\n\n--- Recent Logs ---\n[{when}] wave {value} started")
    return "[Error] " + message[:120], desc


def test_the_same_crash_fingerprints_the_same_across_reports() -> None:
    a = fingerprint(title=_godot_error(12, "res://game", "2026-11-28T10:00:00", 7)[0],
                    description=_godot_error(12, "res://game", "2026-11-28T10:00:00", 7)[1])
    b_title, b_desc = _godot_error(19, "res://src/game", "2026-12-01T23:59:59", 12)
    assert a == fingerprint(title=b_title, description=b_desc)
    assert len(a) == 64 and int(a, 16) >= 0


def test_another_stack_or_message_fingerprints_differently() -> None:
    title, desc = _godot_error(12, "res://game", "t", 7)
    base = fingerprint(title=title, description=desc)
    assert fingerprint(title=title, description=desc.replace("spawn_wave", "spawn_boss")) != base
    assert fingerprint(title=title.replace("Array", "Dictionary"),
                       description=desc.replace("Array", "Dictionary")) != base


def test_frames_in_the_steps_count_but_log_lines_do_not() -> None:
    trace = "   at: f (res://a.gd:1)"
    assert fingerprint(title="[Error] x", steps=trace) == fingerprint(title="[Error] x", description=trace)
    with_logs = "boom\n\n--- Recent Logs ---\n   at: other (res://b.gd:2)"
    assert fingerprint(title="[Error] x", description=with_logs) == \
        fingerprint(title="[Error] x", description="boom")


def test_only_crashes_and_error_titles_are_grouped() -> None:
    assert is_crash(title="Game closes", category="crash")
    assert is_crash(title="[Error] Texture missing", category="visual")
    assert is_crash(title="  [error] lower case", category="other")
    assert not is_crash(title="Error in the credits", category="ui")
