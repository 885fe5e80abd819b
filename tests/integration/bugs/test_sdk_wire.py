"""The public SDKs' calls replayed byte for byte over a real HTTP socket (spec §8): the Godot
addon's HTTPRequest bodies and headers, and the Pygame SDK's urllib requests, for settings,
submit and session replays — then everything they sent is checked where it landed."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import sqlalchemy as sa
from integration.bugs.sdk_support import (
    bug_row,
    counts,
    gif_bytes,
    godot_json,
    godot_multipart,
    godot_request,
    live_bugs,
    outbox,
    png_bytes,
    pygame_http,
    pygame_multipart,
    send_raw,
)

from bugnet_common.bus import subjects
from bugs.models import Attachment, Bug, Occurrence, Project

__all__ = ["live_bugs"]

GODOT_STACK = (
    "[Script Error] SCRIPT ERROR: Invalid access to property or key 'hp' on a base object of type 'Nil'.\n"
    "          at: take_damage (res://scripts/player.gd:57)\n"
    "          at: _on_hitbox_area_entered (res://scripts/enemy.gd:{line})"
)


def _godot_crash(line: int, when: str) -> tuple[str, str]:
    """What the Godot SDK's report_error() files for a SCRIPT ERROR found in godot.log."""
    message = ("[Script Error] SCRIPT ERROR: Invalid access to property or key 'hp' on a base "
               "object of type 'Nil'.")
    title = "[Error] " + message[:120]
    stack = GODOT_STACK.format(line=line)
    desc = message + "\n\n--- Stack Trace ---\n" + stack
    desc += f"\n\n--- Recent Logs ---\n[{when}] Loading level 3\n[{when}] {message}"
    return title, desc


def _godot_submit(port: int, key: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    body = godot_json(payload)
    raw = godot_request("POST", "/api/bugs/submit",
                        ["Content-Type: application/json", "X-API-Key: " + key], body, port=port)
    status, _, resp = send_raw(port, raw)
    return status, json.loads(resp)


def test_godot_sdk_settings_submit_and_replay_land_intact(live_bugs, client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    proj = project(owner, name="Godot Game")
    key, port = proj["api_key"], live_bugs

    # _fetch_settings(): GET with only the X-API-Key header, no body.
    status, headers, body = send_raw(port, godot_request(
        "GET", "/api/bugs/settings", ["X-API-Key: " + key], b"", port=port))
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"ok": True, "data": {"screenshot_capture": True,
                                                     "session_capture": False,
                                                     "auto_file_errors": False}}

    # report_bug() from the widget: a several-MB PNG screenshot captured from the viewport.
    png = png_bytes(1100, 1000, noise=True)
    assert len(png) > 3_000_000
    status, data = _godot_submit(port, key, {
        "title": "Player falls through the bridge",
        "description": "Walked onto the rope bridge and fell through.\nHappens every time.",
        "category": "gameplay", "priority": "high",
        "steps_to_reproduce": "1. Load level 3\n2. Walk onto the bridge",
        "platform": "Windows", "game_version": "1.4.2",
        "os_info": "Windows 10.0.22631", "device_info": "Intel(R) Core(TM) i5-8400 CPU @ 2.80GHz",
        "screenshot": "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
        "steam_id": "76561198000000001", "reporter_name": "Alice",
    })
    assert status == 201, data
    bug_id = data["data"]["id"]
    assert data["ok"] is True and data["data"]["number"] == 1 and data["data"]["grouped"] is False
    shot = data["data"]["screenshot"]
    assert shot["content_type"] == "image/png" and shot["size"] == len(png)

    with bugs_db.session() as session:
        bug = session.get(Bug, bug_id)
        assert bug is not None
        assert (bug.title, bug.category, bug.priority, bug.source) == (
            "Player falls through the bridge", "gameplay", "high", "sdk")
        assert bug.steps == "1. Load level 3\n2. Walk onto the bridge"
        assert (bug.platform, bug.game_version, bug.os_info) == ("Windows", "1.4.2", "Windows 10.0.22631")
        assert bug.device_info == "Intel(R) Core(TM) i5-8400 CPU @ 2.80GHz"
        assert (bug.reporter_steam_id, bug.reporter_name) == ("76561198000000001", "Alice")
        assert bug.fingerprint is None and bug.occurrences == 1
        assert "base64" not in bug.description and "base64" not in bug.search_text
        attachment = session.exec(sa.select(Attachment).where(  # type: ignore[call-overload]
            Attachment.bug_id == bug_id)).scalar_one()
        assert attachment.kind == "screenshot"

    # A member downloads the screenshot: the very bytes the game captured.
    got = client.get(shot["url"], headers=owner.headers)
    assert got.status_code == 200 and got.mimetype == "image/png" and got.data == png
    detail_url = f"/api/projects/{proj['slug']}/bugs/{bug_id}/attachments/{attachment.id}"
    assert shot["url"] == detail_url

    # _upload_session_replay(): multipart by hand, GIF frames, duration as an int string.
    gif = gif_bytes()
    boundary = "----BugnetBoundary" + uuid.uuid4().hex
    metadata = godot_json({"platform": "Windows", "resolution": "1280x720"}).decode()
    replay_body = godot_multipart(boundary, bug_id, 27, metadata, gif)
    status, _, resp = send_raw(port, godot_request(
        "POST", "/api/session-replays",
        ["Content-Type: multipart/form-data; boundary=" + boundary, "X-API-Key: " + key],
        replay_body, port=port))
    replay = json.loads(resp)
    assert status == 201, replay
    assert {k: replay["data"][k] for k in ("bug_id", "kind", "content_type", "size", "duration_sec")} == {
        "bug_id": bug_id, "kind": "replay", "content_type": "image/gif", "size": len(gif),
        "duration_sec": 27.0}
    assert replay["data"]["metadata"] == {"platform": "Windows", "resolution": "1280x720"}
    assert client.get(replay["data"]["url"], headers=owner.headers).data == gif


def test_godot_crashes_group_into_one_bug_across_log_noise(live_bugs, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    proj = project(user("Owner"), name="Godot Crashy")
    key, port = proj["api_key"], live_bugs
    ids = []
    for n, (line, when, version) in enumerate([(12, "2026-11-28T10:00:01", "1.0.0"),
                                               (14, "2026-11-28T11:30:45", "1.0.1"),
                                               (12, "2026-11-29T08:00:00", "1.0.1")]):
        title, desc = _godot_crash(line, when)
        status, data = _godot_submit(port, key, {
            "title": title, "description": desc, "category": "crash", "priority": "critical",
            "steps_to_reproduce": "", "platform": "Linux", "game_version": version,
            "os_info": "Linux 6.1", "device_info": f"Device {n}"})
        assert status == 201, data
        ids.append(data["data"]["id"])
    assert len(set(ids)) == 1
    with bugs_db.session() as session:
        bug = session.get(Bug, ids[0])
        assert bug is not None and bug.occurrences == 3 and bug.fingerprint
        assert bug.versions == ["1.0.0", "1.0.1"] and bug.last_seen_version == "1.0.1"
        keys = session.exec(sa.select(Occurrence.player_key).where(  # type: ignore[call-overload]
            Occurrence.bug_id == bug.id)).scalars().all()
    assert len(keys) == 3 and len(set(keys)) == 3  # three devices, no Steam id: device hashes


def test_pygame_sdk_settings_submit_crash_and_replay_land_intact(live_bugs, client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    proj = project(owner, name="Pygame Game")
    key, server_url = proj["api_key"], f"http://127.0.0.1:{live_bugs}"
    with bugs_db.begin() as session:  # the studio switched session capture on
        row = session.get(Project, proj["id"])
        assert row is not None
        row.settings = {**row.settings, "session_capture": True, "auto_file_errors": True}

    status, result = pygame_http(server_url, key, "GET", "/api/bugs/settings")
    assert status == 200 and result["data"] == {"screenshot_capture": True,
                                                "session_capture": True,
                                                "auto_file_errors": True}

    # _exception_hook -> report_error -> _send_report: a Python traceback, screenshot of the
    # display, the player set through set_player(steam_id, player_name).
    tb = ('Traceback (most recent call last):\n'
          '  File "/home/alice/game/main.py", line 88, in <module>\n    run()\n'
          '  File "/home/alice/game/main.py", line 40, in run\n    world.update(dt)\n'
          '  File "/home/alice/game/world.py", line 12, in update\n    enemy = self.enemies[i]\n'
          'IndexError: list index out of range\n')
    message = "list index out of range"
    png = png_bytes(64, 48)
    payload = {
        "title": ("[Error] " + message[:120])[:300],
        "description": message + "\n\n--- Stack Trace ---\n" + tb
        + "\n\n--- Recent Logs ---\n[Bugnet] SDK initialized",
        "category": "crash", "priority": "critical", "steps_to_reproduce": "",
        "platform": "linux"[:50], "game_version": "0.9.1"[:50],
        "os_info": "Linux 6.1.0-13-amd64"[:100], "device_info": "x86_64 "[:200],
        "screenshot": "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
        "steam_id": "76561198000000002", "reporter_name": "Bob",
    }
    status, result = pygame_http(server_url, key, "POST", "/api/bugs/submit", body=payload)
    assert status == 201, result
    bug_id = result["data"]["id"]

    with bugs_db.session() as session:
        bug = session.get(Bug, bug_id)
        assert bug is not None
        assert (bug.category, bug.priority, bug.platform, bug.game_version) == (
            "crash", "critical", "Linux", "0.9.1")  # sys.platform "linux" normalized
        assert (bug.os_info, bug.device_info) == ("Linux 6.1.0-13-amd64", "x86_64")
        assert (bug.reporter_steam_id, bug.reporter_name) == ("76561198000000002", "Bob")
        assert bug.fingerprint and bug.platforms == ["Linux"] and bug.occurrences == 1
        shot = session.exec(sa.select(Attachment).where(  # type: ignore[call-overload]
            Attachment.bug_id == bug_id)).scalar_one()
    got = client.get(f"/api/projects/{proj['slug']}/bugs/{bug_id}/attachments/{shot.id}",
                     headers=owner.headers)
    assert got.data == png and got.mimetype == "image/png"

    # The same exception again, from a Windows machine with other paths: one more occurrence.
    again = dict(payload, platform="win32", os_info="Windows 10", device_info="AMD64 Intel64",
                 steam_id="76561198000000003", reporter_name="Carol",
                 description=payload["description"].replace("/home/alice/game/", "C:\\Games\\x\\")
                 .replace("line 12", "line 13"))
    status, result = pygame_http(server_url, key, "POST", "/api/bugs/submit", body=again)
    assert status == 201 and result["data"]["id"] == bug_id and result["data"]["occurrences"] == 2

    # _send_session_replay: recorded input events as a JSON list, the key in X-API-Key.
    events = [{"t": 0.016, "type": "mouse_move", "pos": [10, 20]},
              {"t": 0.5, "type": "key_down", "key": 32, "name": "space"}]
    events_json = json.dumps(events).encode("utf-8")
    boundary = "----BugnetBoundary" + uuid.uuid4().hex
    metadata = json.dumps({"platform": "linux", "resolution": "800x600"})
    status, result = pygame_http(
        server_url, key, "POST", "/api/session-replays",
        body=pygame_multipart(boundary, bug_id, 12, metadata, events_json),
        headers={"Content-Type": "multipart/form-data; boundary=" + boundary})
    assert status == 201, result
    assert result["data"]["content_type"] == "application/json"
    assert result["data"]["duration_sec"] == 12.0 and result["data"]["size"] == len(events_json)
    assert client.get(result["data"]["url"], headers=owner.headers).data == events_json

    with bugs_db.session() as session:
        bug = session.get(Bug, bug_id)
        assert bug is not None and bug.occurrences == 2 and bug.platforms == ["Linux", "Windows"]
        players = session.exec(sa.select(Occurrence.player_key).where(  # type: ignore[call-overload]
            Occurrence.bug_id == bug_id).order_by(Occurrence.id)).scalars().all()
    assert players == ["steam:76561198000000002", "steam:76561198000000003"]
    assert [e["subject"] for e in outbox(bugs_db) if e["subject"].startswith("bugnet.bugs.v1.bug")] == [
        subjects.BUG_CREATED, subjects.BUG_OCCURRED]
    assert counts(bugs_db)["attachments"] == 3  # two screenshots, one replay


def test_sdk_clients_sending_steps_instead_of_steps_to_reproduce_keep_their_steps(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    key = project(user("Owner"))["api_key"]
    resp = client.post("/api/bugs/submit", headers={"X-API-Key": key}, json={
        "title": "Door does not open", "steps": "1. Walk to door\n2. Press E",
        "expected": "Door opens", "actual": "Nothing", "platform": "darwin",
        "player_email": "player@example.com"})
    assert resp.status_code == 201, resp.json
    bug = bug_row(bugs_db, resp.json["data"]["id"])
    assert (bug.steps, bug.expected, bug.actual, bug.platform, bug.player_email) == (
        "1. Walk to door\n2. Press E", "Door opens", "Nothing", "macOS", "player@example.com")
    # Both spellings sent, one of them empty: the filled one wins.
    resp = client.post("/api/bugs/submit", headers={"X-API-Key": key}, json={
        "title": "Other", "steps_to_reproduce": "", "steps": "jump twice"})
    assert bug_row(bugs_db, resp.json["data"]["id"]).steps == "jump twice"
