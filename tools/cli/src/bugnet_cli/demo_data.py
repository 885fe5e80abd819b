"""What `bugnet demo` sends: a small game's bug reports, sessions and performance snapshots
over three releases, as the engine SDKs send them (spec §8).

Deterministic: the same counts always give the same figures, so the story holds every time —
1.1.0 is the healthiest release; 1.2.0 crashes clearly more (a Vulkan crash new in 1.2.0,
and the save-file crash fixed in 1.1.0 is back) and renders slower. With at least 100
sessions and 50 snapshots per release, detection reports a `crash_rate`, a `frame_time` and a
`recurrence` regression for 1.2.0.
"""

from __future__ import annotations

import base64
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

VERSIONS = ("1.0.0", "1.1.0", "1.2.0")
# The regression rules' minimums (spec §6): 100 sessions and 50 snapshots per release.
MIN_SESSIONS = 100
MIN_SNAPSHOTS = 50

# Per release: crashed share of sessions, p50-ish frame time (ms), memory (MB).
CRASHED_SHARE = {"1.0.0": 0.02, "1.1.0": 0.01, "1.2.0": 0.07}
FRAME_TIME_MS = {"1.0.0": 16.9, "1.1.0": 16.2, "1.2.0": 21.6}
MEMORY_MB = {"1.0.0": 1450.0, "1.1.0": 1410.0, "1.2.0": 1660.0}

# (SDK platform string as the engines send it, os_info, device_info) — a typical PC/mobile mix.
PLATFORMS: tuple[tuple[str, str, str], ...] = (
    ("Windows", "Windows 11 (10.0.22631) 64bit", "NVIDIA GeForce RTX 3060; 16 GB RAM"),
    ("win32", "Windows 10 (10.0.19045) 64bit", "AMD Radeon RX 6600; 16 GB RAM"),
    ("Windows", "Windows 11 (10.0.22631) 64bit", "Intel Arc A750; 32 GB RAM"),
    ("X11", "Ubuntu 24.04 LTS", "AMD Radeon RX 7800 XT; 32 GB RAM"),
    ("Windows", "Windows 10 (10.0.19045) 64bit", "NVIDIA GeForce GTX 1660; 8 GB RAM"),
    ("macOS", "macOS 14.5", "Apple M2; 16 GB RAM"),
    ("Android", "Android 14 (API 34)", "Pixel 8; 8 GB RAM"),
    ("Windows", "Windows 11 (10.0.22631) 64bit", "NVIDIA GeForce RTX 4070; 32 GB RAM"),
    ("Linux", "SteamOS 3.5", "Steam Deck; 16 GB RAM"),
    ("iOS", "iOS 17.5", "iPhone 15; 6 GB RAM"),
)
DESKTOP = {"Windows", "win32", "X11", "Linux", "macOS"}
SCENES = (("Crystal Caves", 2400.0), ("Market District", 3100.0), ("Castle", 4200.0))


@dataclass(frozen=True)
class Report:
    """One `POST /api/bugs/submit`; `bug` names the bug it files or adds an occurrence to."""

    bug: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Triage:
    """What the studio does to one bug through the bearer API after phase one."""

    status: str | None = None
    labels: tuple[str, ...] = ()
    comments: tuple[tuple[str, bool], ...] = ()  # (body, internal)
    assign_to_me: bool = False
    public: bool = False


LABELS = {"graphics": "#e11d48", "save-system": "#2563eb", "needs-repro": "#f59e0b",
          "ui": "#10b981"}


def _unity_trace(message: str, frames: list[tuple[str, str, str, int]]) -> str:
    lines = [message] + [f"{func} ({args}) (at {path}:{line})" for func, args, path, line in frames]
    return "\n".join(lines)


def _crash(title: str, description: str, priority: str) -> dict[str, Any]:
    return {"title": title, "description": description, "category": "crash",
            "priority": priority}


def inventory_crash(n: int) -> dict[str, Any]:
    message = "NullReferenceException: Object reference not set to an instance of an object"
    return _crash(f"[Error] {message}", _unity_trace(message, [
        ("InventoryUI.Refresh", "", "Assets/Scripts/UI/InventoryUI.cs", 42 + n),
        ("InventoryUI.OnItemAdded", "Item item", "Assets/Scripts/UI/InventoryUI.cs", 118),
        ("Inventory.Add", "Item item, Int32 count", "Assets/Scripts/Inventory.cs", 88 + n),
    ]), "high")


def save_crash(n: int) -> dict[str, Any]:
    message = ("IOException: Sharing violation on path C:\\Users\\player\\AppData\\LocalLow\\"
               f"Studio\\Emberfall\\slot_{n % 3}.sav")
    return _crash("[Error] IOException: Sharing violation while writing the save file",
                  _unity_trace(message, [
                      ("SaveSystem.WriteSlot", "Int32 slot", "Assets/Scripts/Save/SaveSystem.cs",
                       201 + n),
                      ("SaveSystem.Autosave", "", "Assets/Scripts/Save/SaveSystem.cs", 77),
                      ("GameLoop.Update", "", "Assets/Scripts/GameLoop.cs", 31),
                  ]) + "\n---- recent logs ----\n[autosave] writing slot "
                  f"{n % 3} ({1200 + 37 * n} KB)", "critical")


def vulkan_crash(n: int) -> dict[str, Any]:
    base = 0x7F3A1C2B4E10 + 0x1000 * n
    return _crash(
        "[Error] Vulkan: vkQueueSubmit failed with VK_ERROR_DEVICE_LOST",
        "Vulkan: vkQueueSubmit failed with VK_ERROR_DEVICE_LOST\n"
        f"#0  {hex(base)} in RenderingDeviceVulkan::submit (this={hex(0x55D0C0A0 + n)}) "
        f"at drivers/vulkan/rendering_device_vulkan.cpp:{9123 + n}\n"
        f"#1  {hex(base + 0x1112)} in ShaderCache::compile_pipeline (this={hex(0x55D0C0B8 + n)}) "
        "at game/render/shader_cache.cpp:311\n"
        f"#2  {hex(base + 0x2201)} in Renderer::draw_frame (this={hex(0x55D0C100 + n)}) "
        "at game/render/renderer.cpp:77",
        "critical")


def audio_crash(n: int) -> dict[str, Any]:
    return _crash(
        "[Error] Invalid access to property or key 'stream' on a base object of type 'Nil'",
        "Invalid access to property or key 'stream' on a base object of type 'Nil'.\n"
        f"   at: _on_music_finished (res://audio/music_player.gd:{57 + n})\n"
        "   at: play_next (res://audio/music_player.gd:31)\n"
        "   at: _process (res://audio/music_player.gd:12)",
        "medium")


def _report(title: str, category: str, priority: str, description: str, steps: str = "",
            **extra: Any) -> dict[str, Any]:
    return {"title": title, "category": category, "priority": priority,
            "description": description, "steps_to_reproduce": steps, **extra}


# (bug key, body, version, platform index); versions 1.0.0 and 1.1.0 go in phase one, then the
# studio triages (and fixes the save crash in 1.1.0), then the 1.2.0 reports arrive.
OTHER_BUGS: tuple[tuple[str, dict[str, Any], str, int], ...] = (
    ("floor", _report("Player falls through the floor in the Crystal Caves", "gameplay", "high",
                      "Near the second waterfall the floor collision is missing.",
                      "1. Enter the Crystal Caves\n2. Walk along the left wall past the "
                      "waterfall\n3. Fall into the void",
                      expected="The floor holds", actual="The player falls forever"), "1.0.0", 0),
    ("rumble", _report("Controller vibration never stops after the intro cutscene", "gameplay",
                       "medium", "The gamepad keeps rumbling until the game is restarted."),
     "1.0.0", 4),
    ("typo", _report("Typo in the blacksmith's dialogue: 'recieve'", "other", "low",
                     "Blacksmith, second dialogue line."), "1.0.0", 5),
    ("shadows", _report("Shadows flicker on water at dusk", "visual", "medium",
                        "Cascaded shadows flicker on the lake around 19:00 in-game time.",
                        screenshot=True), "1.1.0", 3),
    ("healthbar", _report("Boss health bar overlaps the subtitles at 4K", "ui", "low",
                          "At 3840x2160 with subtitles on, the boss bar covers the bottom line.",
                          screenshot=True), "1.1.0", 7),
    ("footsteps", _report("Footstep sounds missing on wooden bridges", "audio", "low",
                          "Walking on any wooden bridge is silent."), "1.1.0", 5),
    ("lobby", _report("Lobby list is empty behind strict NAT", "network", "high",
                      "Players behind a strict NAT see no lobbies at all."), "1.1.0", 1),
    ("market-fps", _report("Frame rate drops to 20 fps in the market district", "performance",
                           "high", "Since 1.2.0 the market district runs at 20 fps on a GTX "
                           "1660 (60 fps in 1.1.0)."), "1.2.0", 4),
    ("desync", _report("Co-op partner desyncs after loading a checkpoint", "network",
                       "critical", "After a checkpoint load the partner's enemies are in other "
                       "places.", "1. Start co-op\n2. Die\n3. Load the checkpoint"), "1.2.0", 0),
    ("markers", _report("Map markers disappear after fast travel", "ui", "medium",
                        "Custom markers are gone after any fast travel."), "1.2.0", 3),
    ("castle-load", _report("Long load times when entering the castle", "performance", "medium",
                            "Entering the castle takes over 40 seconds on a Pixel 8."),
     "1.2.0", 6),
    ("hair", _report("Character hair clips through helmets", "visual", "low",
                     "Long hair styles clip through every helmet."), "1.2.0", 5),
)

# Crash occurrences: (bug key, body factory, version, platform index, times)
CRASH_REPORTS: tuple[tuple[str, Any, str, int, int], ...] = (
    ("inventory", inventory_crash, "1.0.0", 0, 2),
    ("save", save_crash, "1.0.0", 1, 3),
    ("inventory", inventory_crash, "1.1.0", 2, 2),
    ("save", save_crash, "1.1.0", 4, 2),
    ("audio", audio_crash, "1.1.0", 3, 1),
    ("vulkan", vulkan_crash, "1.2.0", 0, 3),
    ("vulkan", vulkan_crash, "1.2.0", 3, 2),
    ("save", save_crash, "1.2.0", 7, 2),
    ("audio", audio_crash, "1.2.0", 8, 2),
)

TRIAGE: dict[str, Triage] = {
    "save": Triage(status="resolved", labels=("save-system",), comments=(
        ("Fixed in 1.1.0: saves go to a temporary file that is renamed once complete, so an "
         "antivirus scan can no longer lock the slot mid-write.", False),)),
    "inventory": Triage(status="in_progress", labels=("ui",), assign_to_me=True, comments=(
        ("Reproduced: picking up an item while the inventory closes. Looking at it.", True),)),
    "floor": Triage(status="resolved", public=True),
    "rumble": Triage(status="resolved"),
    "typo": Triage(status="closed"),
    "shadows": Triage(labels=("graphics", "needs-repro"), public=True),
    "healthbar": Triage(labels=("ui",)),
    "lobby": Triage(status="wont_fix", comments=(
        ("Strict NAT needs the relay servers, which ship with the 2.0 online update.",
         False),)),
}
TRIAGE_AFTER_1_2 = {
    "vulkan": Triage(status="in_progress", labels=("graphics", "needs-repro"),
                     assign_to_me=True),
    "desync": Triage(status="in_progress", assign_to_me=True),
}


def _player(version: str, i: int, platform_index: int | None = None) -> dict[str, str]:
    """Session or report fields of player `i` on the platform `platform_index` (default i)."""
    which = i if platform_index is None else platform_index
    platform, os_info, device = PLATFORMS[which % len(PLATFORMS)]
    fields = {"platform": platform, "os_info": os_info, "device_info": device,
              "game_version": version}
    # A few dozen returning players: the same people play every release.
    player = (i * 7) % 60
    if platform in DESKTOP:
        fields["steam_id"] = f"7656119800{player:07d}"
    else:
        fields["device_id"] = f"demo-device-{player:03d}"
    return fields


@dataclass
class Plan:
    """Everything `bugnet demo` sends, in the order it must arrive."""

    sessions_per_release: int = MIN_SESSIONS
    snapshots_per_release: int = MIN_SNAPSHOTS
    reports_first: list[Report] = field(default_factory=list)
    reports_later: list[Report] = field(default_factory=list)
    # [(path, body)] per session: a start, then an end when it crashed
    sessions: list[list[tuple[str, dict[str, Any]]]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reports(self) -> list[Report]:
        return self.reports_first + self.reports_later

    @property
    def crashed(self) -> dict[str, int]:
        return {v: crashed_sessions(v, self.sessions_per_release) for v in VERSIONS}

    @property
    def sdk_requests(self) -> int:
        return (1 + len(self.reports) + sum(len(s) for s in self.sessions)
                + len(self.snapshots))


def crashed_sessions(version: str, sessions: int) -> int:
    return max(1, round(sessions * CRASHED_SHARE[version]))


def build_plan(*, sessions_per_release: int = MIN_SESSIONS,
               snapshots_per_release: int = MIN_SNAPSHOTS, screenshots: bool = True) -> Plan:
    plan = Plan(sessions_per_release=sessions_per_release,
                snapshots_per_release=snapshots_per_release)
    reports: list[tuple[str, Report]] = []
    n = 0
    for key, factory, version, platform, times in CRASH_REPORTS:
        for _ in range(times):
            n += 1
            body = {**factory(n), **_player(version, n, platform)}
            reports.append((version, Report(key, body)))
    for key, body, version, platform in OTHER_BUGS:
        data = {k: v for k, v in body.items() if k != "screenshot"}
        data.update(_player(version, len(reports), platform))
        data["reporter_name"] = f"Player {platform + 1}"
        if body.get("screenshot") and screenshots:
            data["screenshot"] = screenshot_data_uri(seed=len(reports))
        reports.append((version, Report(key, data)))
    order = {v: i for i, v in enumerate(VERSIONS)}
    reports.sort(key=lambda r: order[r[0]])  # stable: within a release, as listed
    plan.reports_first = [r for v, r in reports if v != "1.2.0"]
    plan.reports_later = [r for v, r in reports if v == "1.2.0"]

    for version in VERSIONS:
        crashed = crashed_sessions(version, sessions_per_release)
        for i in range(sessions_per_release):
            token = uuid.uuid4().hex
            start: dict[str, Any] = {"session_token": token, **_player(version, i)}
            steps: list[tuple[str, dict[str, Any]]] = [("/sessions/start", start)]
            if i < crashed:
                steps.append(("/sessions/end", {"session_token": token, "crashed": True}))
            plan.sessions.append(steps)
        for i in range(snapshots_per_release):
            # Frame times spread ±2.5 ms around the release's figure, evenly: p50 is the figure.
            spread = (i % 11 - 5) * 0.5
            frame_time = round(FRAME_TIME_MS[version] + spread, 2)
            snapshot: dict[str, Any] = {
                "fps": round(1000.0 / frame_time, 1), "frame_time_ms": frame_time,
                "memory_used_mb": MEMORY_MB[version] + (i % 7) * 12.5,
                "platform": PLATFORMS[i % len(PLATFORMS)][0], "game_version": version}
            if i % 5 == 0:
                scene, load_ms = SCENES[(i // 5) % len(SCENES)]
                factor = 1.35 if version == "1.2.0" else 1.0
                snapshot["custom_metrics"] = {"scene": scene,
                                              "scene_load_ms": round(load_ms * factor + i, 1)}
            plan.snapshots.append(snapshot)
    return plan


def screenshot_data_uri(*, seed: int, width: int = 96, height: int = 54) -> str:
    """A small real PNG (a dusk-coloured gradient) as the SDKs send it: a base64 data URI."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            rows += bytes(((40 + 2 * x + seed * 9) % 256, (20 + 3 * y) % 256,
                           (90 + x + y) % 256))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(bytes(rows)))
           + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode()
