"""Game versions compared the way players and studios read them.

`1.10.0` is after `1.9.2`; `v1.2` equals `1.2.0`; `1.2.3-beta.1` comes before `1.2.3` and
after `1.2.3-alpha`; build metadata (`+build.7`) never changes the order. Anything that does
not parse ("unknown", "nightly") sorts before every parsed version and, among its kind, in
natural order ("build 9" before "build 10"), so `newest()` and sorts stay total and stable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_VERSION = re.compile(
    r"""^[vV]?\s*
        (?P<release>\d+(?:\.\d+)*)
        # "-beta.1", "-1", ".beta", "rc1": a "." or nothing only before a letter
        (?:(?:-|\.(?=[A-Za-z])|(?=[A-Za-z]))(?P<pre>[0-9A-Za-z]+(?:[.-][0-9A-Za-z]+)*))?
        (?:\+(?P<build>[0-9A-Za-z.-]+))?$""",
    re.VERBOSE,
)
_NATURAL = re.compile(r"(\d+)")


@dataclass(frozen=True)
@total_ordering
class Version:
    """A parsed version: release numbers, optional pre-release identifiers."""

    release: tuple[int, ...]
    pre: tuple[int | str, ...] = ()

    def _release_key(self) -> tuple[int, ...]:
        # 1.2 == 1.2.0 == 1.2.0.0: trailing zeros do not make a version newer.
        rel = list(self.release)
        while len(rel) > 1 and rel[-1] == 0:
            rel.pop()
        return tuple(rel)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._release_key() == other._release_key() and self.pre == other.pre

    def __hash__(self) -> int:
        return hash((self._release_key(), self.pre))

    def __lt__(self, other: Version) -> bool:
        a, b = self._release_key(), other._release_key()
        width = max(len(a), len(b))
        a, b = a + (0,) * (width - len(a)), b + (0,) * (width - len(b))
        if a != b:
            return a < b
        # A pre-release comes before its release (semver §11).
        if not self.pre or not other.pre:
            return bool(self.pre) and not other.pre
        return _pre_key(self.pre) < _pre_key(other.pre)


def _pre_key(pre: tuple[int | str, ...]) -> tuple[tuple[int, int, str], ...]:
    # Numeric identifiers sort numerically and before alphanumeric ones; a shorter list of
    # equal identifiers sorts first — semver's rules, expressed as a tuple key.
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in pre)


def parse_version(text: str | None) -> Version | None:
    """`text` as a Version, or None when it is not a version at all."""
    if text is None:
        return None
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    release = tuple(int(part) for part in match["release"].split("."))
    pre: tuple[int | str, ...] = ()
    if match["pre"]:
        # "rc1", "rc.1" and "RC-1" are one pre-release; numbers inside compare as numbers.
        pre = tuple(int(p) if p.isdigit() else p.lower()
                    for p in re.findall(r"\d+|[A-Za-z]+", match["pre"]))
    return Version(release=release, pre=pre)


def version_key(text: str | None) -> tuple[int, object]:
    """A sort key for any version string: unparsable ones first (naturally ordered), then
    parsed versions in semantic order."""
    parsed = parse_version(text)
    if parsed is not None:
        return (1, parsed)
    natural = tuple((0, int(tok), "") if tok.isdigit() else (1, 0, tok.lower())
                    for tok in _NATURAL.split((text or "").strip()) if tok)
    return (0, natural)


def compare_versions(a: str | None, b: str | None) -> int:
    """-1, 0 or 1 as `a` is older than, the same as, or newer than `b`."""
    ka, kb = version_key(a), version_key(b)
    if ka == kb:
        return 0
    # The first items differ in kind only when one version parsed and the other did not;
    # otherwise both second items are Versions or both natural-order tuples.
    return -1 if ka < kb else 1  # type: ignore[operator]


def is_newer(candidate: str | None, baseline: str | None) -> bool:
    """Whether `candidate` is a strictly newer version than `baseline` (False when either is
    missing)."""
    if not candidate or not baseline:
        return False
    return compare_versions(candidate, baseline) > 0


def newest(*versions: str | None) -> str | None:
    """The semantically newest of `versions`, ignoring missing ones; the first wins ties."""
    best: str | None = None
    for version in versions:
        if version and (best is None or compare_versions(version, best) > 0):
            best = version
    return best
