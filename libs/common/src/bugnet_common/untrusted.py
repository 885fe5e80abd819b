"""Text a client sent, made safe to parse and to store.

- `parse_json`: `json.loads` whose every failure is a ValueError — never the RecursionError
  Python's parser raises for deep nesting — and which refuses values nested deeper than
  MAX_JSON_DEPTH, so no later step (validation, json.dumps, jsonb) recurses through them.
- `loads_json`: a request body's JSON value, or a 400 envelope error saying why not.
- `find_unstorable` / `reject_nul`: strings PostgreSQL's text cannot hold (a NUL character, an
  unpaired surrogate), found with the dotted path of the field that holds them.
"""

from __future__ import annotations

import json
from typing import Any

from . import errors

NUL = "\x00"
NUL_MESSAGE = "must not contain the NUL character"
SURROGATE_MESSAGE = "must be valid Unicode (it holds an unpaired surrogate)"


MAX_JSON_DEPTH = 100


class JsonTooDeep(ValueError):
    """A JSON text nested deeper than MAX_JSON_DEPTH arrays/objects."""


def parse_json(data: bytes | str, **kwargs: Any) -> Any:
    """`json.loads` for text a client sent: any problem is a ValueError, never the
    RecursionError Python's parser raises for deep nesting (`[[[[...` fits ~500k levels in
    a 1 MiB body), and values nested deeper than MAX_JSON_DEPTH are refused (JsonTooDeep),
    so no later step (validation, json.dumps, jsonb) recurses through them."""
    try:
        value = json.loads(data, **kwargs)
    except RecursionError:
        raise JsonTooDeep(f"nested more than {MAX_JSON_DEPTH} levels deep") from None
    brackets = (data.count("[") + data.count("{")) if isinstance(data, str) \
        else (data.count(b"[") + data.count(b"{"))
    if brackets > MAX_JSON_DEPTH and _deeper_than(value, MAX_JSON_DEPTH):
        raise JsonTooDeep(f"nested more than {MAX_JSON_DEPTH} levels deep")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in node)
    return False


def loads_json(data: bytes | str, *, check_text: bool = True) -> Any:
    """A JSON body's value: 400 when malformed or nested too deeply, or when a string in it
    cannot be stored as text (a NUL character or an unpaired surrogate: PostgreSQL refuses
    both, and no client means to send them). Both can only arrive as \\u escapes, so bodies
    without one are not walked."""
    try:
        if check_text and isinstance(data, bytes):
            # strictly: json.loads would decode bytes with "surrogatepass", letting UTF-8
            # encoded surrogates (ED A0 80...) in without a \\u escape to find them by
            data = data.decode("utf-8-sig")
        value = parse_json(data)
    except JsonTooDeep:
        raise errors.BadRequest(
            f"JSON body is nested too deeply (more than {MAX_JSON_DEPTH} levels)") from None
    except (ValueError, UnicodeDecodeError):
        raise errors.BadRequest("Malformed JSON body") from None
    if check_text and (("\\u" in data) if isinstance(data, str) else (b"\\u" in data)):
        problem = find_unstorable(value)
        if problem is not None:
            raise _text_error(*problem)
    return value


def _text_error(where: str, message: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(f"Invalid '{where}': {message}", details={where: message})


def _unstorable(text: str) -> str | None:
    if NUL in text:
        return NUL_MESSAGE
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_MESSAGE
    return None


def find_unstorable(value: Any) -> tuple[str, str] | None:
    """(dotted path, message) of the first string, value or key, that text cannot hold."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if (message := _unstorable(node)) is not None:
                return path or "body", message
        elif isinstance(node, dict):
            for key, item in node.items():
                child = f"{path}.{key}" if path else str(key)
                if (message := _unstorable(key)) is not None:
                    return child.encode("utf-8", "backslashreplace").decode(), message
                stack.append((child, item))
        elif isinstance(node, list):
            stack.extend((f"{path}.{i}" if path else str(i), item) for i, item in enumerate(node))
    return None


def reject_nul(fields: Any) -> None:
    """400 for a NUL in a name or value of `fields` (a werkzeug MultiDict: query or form)."""
    for name, value in fields.items(multi=True):
        if NUL in name or (isinstance(value, str) and NUL in value):
            raise _text_error(name.replace(NUL, "\\0"), NUL_MESSAGE)
