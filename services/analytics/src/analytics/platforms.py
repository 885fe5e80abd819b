"""Platform names as the breakdowns show them (spec §8): every spelling an engine SDK sends
for the same platform becomes one name."""

from __future__ import annotations

# Lower-cased spelling (or its prefix, for engine names such as Unity's "WindowsPlayer").
_EXACT: dict[str, str] = {
    "win32": "Windows", "win64": "Windows", "windows": "Windows", "win": "Windows",
    "darwin": "macOS", "macos": "macOS", "osx": "macOS", "mac os x": "macOS", "mac": "macOS",
    "macosx": "macOS",
    "linux": "Linux", "x11": "Linux", "linuxbsd": "Linux", "freebsd": "Linux",
    "android": "Android",
    "ios": "iOS", "iphone": "iOS", "ipad": "iOS", "iphoneplayer": "iOS",
    "web": "Web", "html5": "Web", "webgl": "Web", "emscripten": "Web", "browser": "Web",
    "webglplayer": "Web", "wasm": "Web",
}
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("windows", "Windows"), ("win32", "Windows"), ("osx", "macOS"), ("macos", "macOS"),
    ("linux", "Linux"), ("android", "Android"), ("iphone", "iOS"), ("ios", "iOS"),
    ("webgl", "Web"), ("html5", "Web"),
)


def normalize_platform(raw: str | None) -> str:
    """The breakdown name of `raw`; unknown names are kept as sent (trimmed), '' for none."""
    if raw is None:
        return ""
    name = raw.strip()
    low = name.lower()
    if not low:
        return ""
    if low in _EXACT:
        return _EXACT[low]
    for prefix, platform in _PREFIXES:
        if low.startswith(prefix):
            return platform
    return name
