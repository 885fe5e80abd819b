"""Reviews that mention bugs or crashes: a word list matched on whole words, case-insensitively.

Each pattern maps to one canonical term ("crash" for crashes, crashed, crashing...), which is
what the dashboard counts. English only: reviews in other languages are imported but are not
flagged.
"""

from __future__ import annotations

import re

_TERMS: dict[str, str] = {
    "bug": r"bug(?:s|gy|ged)?",
    "crash": r"crash(?:es|ed|ing|y)?|ctd",
    "freeze": r"freez(?:e|es|ing)|froze|frozen",
    "glitch": r"glitch(?:es|ed|y)?",
    "broken": r"broken|breaks",
    "error": r"errors?",
    "stutter": r"stutter(?:s|ing)?",
    "lag": r"lag(?:s|gy|ging)?",
    "softlock": r"soft-?lock(?:s|ed)?|hard-?lock(?:s|ed)?",
    "black screen": r"black\s+screen",
    "desync": r"desync(?:s|ed)?",
    "corrupted save": r"corrupt(?:ed)?\s+saves?|save\s+corruption",
    "won't launch": r"(?:won'?t|doesn'?t|does\s+not|will\s+not|can'?t|cannot)\s+(?:launch|start|load)",
    "unplayable": r"unplayable",
    "fps drops": r"fps\s+drops?|frame\s*rate\s+drops?",
}
_PATTERN = re.compile(r"\b(?:" + "|".join(f"(?P<t{i}>{p})" for i, p in enumerate(_TERMS.values()))
                      + r")\b", re.IGNORECASE)
_NAMES = list(_TERMS)


def mentions(text: str) -> list[str]:
    """The canonical terms found in `text`, in word-list order, each once."""
    found: set[int] = set()
    for match in _PATTERN.finditer(text or ""):
        group = match.lastgroup
        if group is not None:
            found.add(int(group[1:]))
    return [_NAMES[i] for i in sorted(found)]
