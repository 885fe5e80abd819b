"""Crash fingerprints: the same crash, reported twice, must hash the same.

A fingerprint is the SHA-256 of a crash's normalized message and its top (innermost) stack
frames, at most five. Normalizing strips what differs between two reports of one crash —
addresses, line numbers, hex ids, numbers, file paths and timestamps — and keeps what
identifies it: the words of the message, function names and file names. Frames are read from
the common engine formats: Godot, Unity/C#/.NET, Python, JavaScript and native backtraces.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

MAX_FRAMES = 5
ERROR_TITLE_PREFIX = "[error]"
# SDKs append the tail of the game's log after the trace; those lines differ every time.
_LOG_SECTION = re.compile(r"^-{2,}\s*recent logs\s*-{2,}\s*$", re.IGNORECASE | re.MULTILINE)
_LOOKS_LIKE_ERROR = re.compile(
    r"error|exception|fatal|fault|sigsegv|sigabrt|sigbus|sigill|sigfpe|panic|assert|abort"
    r"|traceback|null|\bnil\b|invalid|undefined|not found|cannot|can't|failed|out of (?:range|bounds|memory)",
    re.IGNORECASE)

# ---- message normalization ------------------------------------------------------------------

_URL = re.compile(r"\b(?:res|user|file|https?|jar|app)://[^\s'\"()<>]*")
_WIN_PATH = re.compile(r"\b[A-Za-z]:[\\/][^\s'\"()<>:]*")
_POSIX_PATH = re.compile(r"(?<![\w.])(?:~|\.{1,2})?(?:/[\w.@+\-]+)+/?")
_REL_PATH = re.compile(r"\b[\w.\-]+(?:[\\/][\w.\-]+)+")  # Assets/Scripts/Player.cs
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_HEX = re.compile(r"\b0[xX][0-9a-fA-F]+\b|#[0-9a-fA-F]{6,}\b|\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """`text` without the parts that differ between two reports of one crash."""
    text = _URL.sub("<path>", text)
    text = _WIN_PATH.sub("<path>", text)
    text = _POSIX_PATH.sub("<path>", text)
    text = _REL_PATH.sub("<path>", text)
    text = _UUID.sub("<id>", text)
    text = _HEX.sub("<hex>", text)
    text = _NUMBER.sub("<n>", text)
    return _SPACES.sub(" ", text).strip().lower()


def _strip_error_prefix(title: str) -> str:
    head = title.strip()
    if head.lower().startswith(ERROR_TITLE_PREFIX):
        head = head[len(ERROR_TITLE_PREFIX):].strip()
    return head


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def crash_message(title: str, description: str) -> str:
    """The crash's message: the title, and the description's first line when it reads like
    an error. SDKs title a crash "[Error] " + the message cut at 120 characters and start the
    description with the whole message; then the longer of the two is the message."""
    head = _first_line(_strip_error_prefix(title))
    first = _first_line(description)
    if not first or not _LOOKS_LIKE_ERROR.search(first):
        return head
    if first.startswith(head) or head.startswith(first):
        return first if len(first) >= len(head) else head
    return f"{head}\n{first}"


# ---- stack frames ---------------------------------------------------------------------------

_FUNC = r"[\w$.:`<>~\[\]+,/|']+"
_AT_FILE = r"\((?P<file>[^()]*?)(?::\d+)*\)"
# Each pattern names `func` (or `func2`) and `file`; either may be absent. First match wins.
_FRAME_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Python: File "/game/main.py", line 3, in update   (innermost frame last)
    ("python", re.compile(r'^\s*File "(?P<file>[^"]+)", line \d+, in (?P<func>\S+)')),
    # Godot 4: "   at: take_damage (res://player.gd:57)"; backtrace "[0] _ready (res://main.gd:5)"
    ("godot", re.compile(r"^\s*(?:at:|\[\d+\])\s*(?P<func>" + _FUNC + r")\s*" + _AT_FILE + r"\s*$",
                         re.IGNORECASE)),
    # Godot 3: "   At: res://player.gd:42:_process() - ..."
    ("godot", re.compile(r"^\s*At:\s*(?P<file>\S+?):\d+:(?P<func>[\w.]+)\(\)")),
    # Unity log: "Game.Player:Update () (at Assets/Scripts/Player.cs:42)"
    ("unity", re.compile(r"^\s*(?P<func>" + _FUNC + r")\s*\([^()]*\)\s*\(at (?P<file>[^()]*?)(?::\d+)*\)\s*$")),
    # JavaScript: "at update (https://game.example/app.js:1:2)", "at https://game.example/app.js:1:2"
    ("js", re.compile(r"^\s*at\s+(?:(?:async\s+)?(?P<func>" + _FUNC + r")\s+)?" + _AT_FILE + r"\s*$")),
    ("js", re.compile(r"^\s*at\s+(?P<file>(?:https?|file)://\S+?)(?::\d+)+\s*$")),
    # Mono/.NET: "at Game.Player.Update () [0x0001] in /src/Player.cs:42",
    # "at Game.Player.Update(Int32 x) in C:\src\Player.cs:line 42"
    ("dotnet", re.compile(r"^\s*at\s+(?P<func>" + _FUNC + r")\s*\([^()]*\)\s*(?:\[0x[0-9a-fA-F]+\])?"
                          r"\s*(?:in\s+(?P<file>.+?)(?::line\s*\d+|(?::\d+)+)?)?\s*$")),
    # gdb: "#0  0x00007f3a in Game::update (this=0x1) at game.cpp:42",
    # "#1 0x00007f in ?? () from /lib/libc.so.6", "#0  raise (sig=6) at ../sysdeps/raise.c:50"
    ("native", re.compile(r"^\s*#\d+\s+(?:0x[0-9a-fA-F]+\s+in\s+(?P<func>[^\s(]+)\s*(?:\([^)]*\))?"
                          r"|(?P<func2>[^\s(]+)\s*\([^)]*\))"
                          r"(?:\s+(?:at|from)\s+(?P<file>\S+?)(?::\d+)*)?\s*$")),
    # Android: "#00 pc 000000000004e7d4  /system/lib64/libc.so (abort+164)"
    ("native", re.compile(r"^\s*#\d+\s+pc\s+[0-9a-fA-F]+\s+(?P<file>\S+)(?:\s+\((?P<func>[^)+\s]+)[^)]*\))?")),
    # lldb: "frame #0: 0x0000 libgame.dylib`Game::update() + 12"; Windows: "game.exe!Game::update+0x1a"
    ("native", re.compile(r"^\s*(?:\*\s*)?frame #\d+:\s*0x[0-9a-fA-F]+\s+(?P<file>[^`\s]+)`(?P<func>[^\s(]+)")),
    ("native", re.compile(r"^\s*(?P<file>[\w.\-]+\.(?:exe|dll|so|dylib))!(?P<func>[^\s+(]+)")),
)
_LINE_SUFFIX = re.compile(r"(?::line\s*\d+|(?::\d+)+)$")


def _basename(path: str | None) -> str:
    if not path:
        return ""
    path = _LINE_SUFFIX.sub("", path.strip())
    name = re.split(r"[\\/]", path.rstrip("\\/"))[-1]
    return normalize_text(name.split("?")[0])


def _frame(func: str | None, path: str | None) -> str:
    func = _NUMBER.sub("<n>", _HEX.sub("<hex>", func or "<anonymous>"))
    name = _basename(path)
    return f"{func} @ {name}" if name else func


def stack_frames(text: str) -> list[str]:
    """The top (innermost) frames found in `text`, normalized, at most MAX_FRAMES."""
    frames: list[str] = []
    python: list[str] = []
    for line in text.splitlines():
        for kind, pattern in _FRAME_PATTERNS:
            match = pattern.match(line)
            if match is None:
                continue
            groups = match.groupdict()
            frame = _frame(groups.get("func") or groups.get("func2"), groups.get("file"))
            (python if kind == "python" else frames).append(frame)
            break
    # Python prints the innermost frame last (and the final exception's trace last).
    frames.extend(reversed(python))
    return frames[:MAX_FRAMES]


def crash_text(description: str, steps: str) -> str:
    """Where frames are looked for: description and steps, without the trailing log section."""
    parts: Iterable[str] = (_LOG_SECTION.split(description, maxsplit=1)[0], steps)
    return "\n".join(p for p in parts if p)


# ---- the fingerprint ------------------------------------------------------------------------

def is_crash(*, title: str, category: str) -> bool:
    """Whether a report is grouped: category `crash`, or a title beginning `[Error]`."""
    return category == "crash" or title.strip().lower().startswith(ERROR_TITLE_PREFIX)


def fingerprint(*, title: str, description: str = "", steps: str = "") -> str:
    """SHA-256 (hex) of the normalized message and the top frames."""
    message = normalize_text(crash_message(title, description))
    frames = stack_frames(crash_text(description, steps))
    return hashlib.sha256("\n".join([message, *frames]).encode()).hexdigest()
