"""The bugs service through Envoy: SDK traffic as shipped games send it, revocation reaching
bugs, and an account export that includes what bugs holds."""

from __future__ import annotations

import base64
import json
import os
import struct
import time
import zlib
from collections.abc import Callable

import httpx
from e2e.support import PASSWORD, assert_envelope_error, auth, signup


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def make_project(api: httpx.Client, token: str, name: str) -> dict:
    resp = api.post("/projects", json={"name": name}, headers=auth(token))
    assert resp.status_code == 201, resp.text
    return resp.json()["data"]


def test_godot_submit_with_a_screenshot_and_a_replay_land_through_the_gateway(
        new_client: Callable[..., httpx.Client]) -> None:
    dashboard = new_client()
    token, _, _ = signup(dashboard)
    project = make_project(dashboard, token, "Gateway Game")
    game = new_client()
    key = {"X-API-Key": project["api_key"]}

    settings = game.get("/bugs/settings", headers=key)
    assert settings.status_code == 200
    assert settings.json()["data"] == {"screenshot_capture": True, "session_capture": False,
                                       "auto_file_errors": False}

    shot = png(900, 800)  # ~2 MB of noise: above the gateway's default 1 MiB cap
    assert len(shot) > 1_500_000
    body = json.dumps({
        "title": "Player falls through the bridge", "description": "Every time, level 3.",
        "category": "gameplay", "priority": "high",
        "steps_to_reproduce": "1. Load level 3\n2. Walk onto the bridge",
        "platform": "Windows", "game_version": "1.4.2", "os_info": "Windows 10.0.22631",
        "device_info": "Intel(R) Core(TM) i5-8400 CPU @ 2.80GHz",
        "screenshot": "data:image/png;base64," + base64.b64encode(shot).decode(),
    })
    submitted = game.post("/bugs/submit", content=body,
                          headers={**key, "Content-Type": "application/json"})
    assert submitted.status_code == 201, submitted.text
    bug_id = submitted.json()["data"]["id"]

    replay = game.post("/session-replays", headers=key, files={
        "file": ("replay.json", b'[{"t": 0, "type": "input", "key": "W"}]', "application/json")},
        data={"bug_report_id": bug_id, "duration_sec": "12.5", "metadata": '{"fps": 60}'})
    assert replay.status_code == 201, replay.text

    detail = dashboard.get(f"/projects/{project['slug']}/bugs/{bug_id}", headers=auth(token))
    assert detail.status_code == 200
    bug = detail.json()["data"]
    assert bug["steps"] == "1. Load level 3\n2. Walk onto the bridge" and bug["source"] == "sdk"
    kinds = {a["kind"]: a for a in bug["attachments"]}
    assert set(kinds) == {"screenshot", "replay"}
    download = dashboard.get(kinds["screenshot"]["url"].removeprefix("/api"), headers=auth(token))
    assert download.status_code == 200 and download.content == shot
    assert download.headers["content-type"] == "image/png"


def test_a_signed_out_token_is_refused_by_the_bugs_service_within_a_second(api: httpx.Client) -> None:
    token, _, _ = signup(api)
    assert api.get("/projects", headers=auth(token)).status_code == 200
    assert api.post("/auth/logout", headers=auth(token)).status_code == 200
    logged_out = time.monotonic()
    while True:
        status = api.get("/projects", headers=auth(token)).status_code
        if status == 401 or time.monotonic() - logged_out > 3:
            break
        time.sleep(0.02)
    elapsed = time.monotonic() - logged_out
    assert status == 401 and elapsed < 1.0, f"still {status} after {elapsed:.2f}s"


def test_account_export_and_deletion_cover_the_bugs_service(
        new_client: Callable[..., httpx.Client]) -> None:
    api = new_client()
    owner_token, _, _ = signup(api)
    teammate_token, _, teammate_email = signup(api)
    project = make_project(api, owner_token, "Shared Game")
    slug = project["slug"]
    invite = api.post(f"/projects/{slug}/team/invitations", headers=auth(owner_token),
                      json={"email": teammate_email, "role": "member"})
    assert invite.status_code == 201, invite.text
    accepted = api.post(f"/invitations/{invite.json()['data']['token']}/accept",
                        headers=auth(teammate_token))
    assert accepted.status_code in (200, 201), accepted.text
    filed = api.post(f"/projects/{slug}/bugs", headers=auth(owner_token),
                     json={"title": "Owner's bug", "category": "ui"})
    assert filed.status_code == 201

    export = api.get("/auth/export", headers=auth(owner_token)).json()["data"]
    assert export["complete"] is True
    assert [m["slug"] for m in export["memberships"]] == [slug]
    assert [b["title"] for b in export["bugs"]] == ["Owner's bug"]

    refused = api.request("DELETE", "/auth/me", headers=auth(owner_token), json={"password": PASSWORD})
    body = assert_envelope_error(refused, 409)
    assert "Shared Game" in body["error"]

    gone = api.request("DELETE", "/auth/me", headers=auth(teammate_token), json={"password": PASSWORD})
    assert gone.status_code == 200, gone.text
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the bugs worker applies user_deleted
        team = api.get(f"/projects/{slug}/team", headers=auth(owner_token)).json()["data"]
        if len(team) == 1:
            break
        time.sleep(0.1)
    assert [m["role"] for m in team] == ["owner"]
    deleted_owner = api.request("DELETE", "/auth/me", headers=auth(owner_token),
                                json={"password": PASSWORD})
    assert deleted_owner.status_code == 200, deleted_owner.text
