"""Discord messages for Bugnet events, kept within Discord's embed limits.

Limits (Discord API docs, "Embed Limits"): title 256, description 4096, at most 25 fields,
field name 256 and value 1024, footer text 2048, author name 256, and 6000 characters over
all of those together in one message. Over-long text is cut with an ellipsis, never refused.
"""

from __future__ import annotations

import json
from typing import Any

TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_MAX = 256
TOTAL_MAX = 6000

PRIORITY_COLORS = {"critical": 0xE74C3C, "high": 0xE67E22, "medium": 0xF1C40F, "low": 0x95A5A6}
EVENT_COLORS = {"bug_resolved": 0x2ECC71, "regression_detected": 0xC0392B,
                "alert_triggered": 0xE74C3C, "ping": 0x5865F2}
EVENT_TITLES = {
    "bug_created": "New bug", "bug_updated": "Bug updated", "bug_resolved": "Bug resolved",
    "comment_added": "New comment", "regression_detected": "Regression detected",
    "alert_triggered": "Alert", "ping": "Test message from Bugnet",
}


def cut(text: Any, limit: int) -> str:
    """`text` as a string of at most `limit` characters (an ellipsis marks a cut)."""
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _field(name: str, value: Any, inline: bool = True) -> dict[str, Any]:
    if isinstance(value, dict | list):
        value = json.dumps(value, separators=(",", ":"))
    text = cut(value, FIELD_VALUE_MAX) or "—"
    return {"name": cut(name, FIELD_NAME_MAX) or "—", "value": text, "inline": inline}


def _size(embed: dict[str, Any]) -> int:
    total = len(embed.get("title", "")) + len(embed.get("description", ""))
    total += len(embed.get("footer", {}).get("text", "")) + len(embed.get("author", {}).get("name", ""))
    return total + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))


def fit(embed: dict[str, Any]) -> dict[str, Any]:
    """`embed` cut to every per-part limit and to the 6000-character total (the description,
    then trailing fields give way first)."""
    out = dict(embed)
    if "title" in out:
        out["title"] = cut(out["title"], TITLE_MAX)
    if "description" in out:
        out["description"] = cut(out["description"], DESCRIPTION_MAX)
    if "footer" in out:
        out["footer"] = {**out["footer"], "text": cut(out["footer"].get("text"), FOOTER_MAX)}
    if "author" in out:
        out["author"] = {**out["author"], "name": cut(out["author"].get("name"), AUTHOR_MAX)}
    out["fields"] = [_field(f["name"], f["value"], f.get("inline", True))
                     for f in out.get("fields", [])][:FIELDS_MAX]
    excess = _size(out) - TOTAL_MAX
    if excess > 0 and out.get("description"):
        keep = max(len(out["description"]) - excess, 0)
        out["description"] = cut(out["description"], keep) if keep else ""
        excess = _size(out) - TOTAL_MAX
    while excess > 0 and out["fields"]:
        out["fields"].pop()
        excess = _size(out) - TOTAL_MAX
    if not out["fields"]:
        out.pop("fields")
    if not out.get("description"):
        out.pop("description", None)
    return out


def _bug_embed(event: str, slug: str, data: dict[str, Any]) -> dict[str, Any]:
    number = data.get("number")
    title = f"{EVENT_TITLES.get(event, event)}: #{number} {data.get('title', '')}"
    embed: dict[str, Any] = {
        "title": title,
        "color": EVENT_COLORS.get(event) or PRIORITY_COLORS.get(str(data.get("priority")), 0x3498DB),
        "fields": [_field("Status", data.get("status")), _field("Priority", data.get("priority")),
                   _field("Category", data.get("category"))],
    }
    if isinstance(data.get("url"), str) and data["url"].startswith(("http://", "https://")):
        embed["url"] = data["url"]
    comment = data.get("comment")
    if event == "comment_added" and isinstance(comment, dict):
        embed["description"] = str(comment.get("body") or "")
        author = comment.get("author")
        if isinstance(author, dict) and author.get("display_name"):
            embed["author"] = {"name": str(author["display_name"])}
    changes = data.get("changes")
    if isinstance(changes, dict):
        for name, change in changes.items():
            if isinstance(change, dict):
                embed["fields"].append(_field(f"{name}", f"{change.get('from')} → {change.get('to')}",
                                              inline=False))
    return embed


def _generic_embed(event: str, data: dict[str, Any]) -> dict[str, Any]:
    heading = data.get("title") or data.get("name") or data.get("message")
    title = EVENT_TITLES.get(event, event) + (f": {heading}" if heading else "")
    embed: dict[str, Any] = {"title": title, "color": EVENT_COLORS.get(event, 0x3498DB),
                             "fields": []}
    if data.get("description"):
        embed["description"] = str(data["description"])
    if isinstance(data.get("url"), str) and data["url"].startswith(("http://", "https://")):
        embed["url"] = data["url"]
    for name, value in data.items():
        if name in ("title", "name", "message", "description", "url") or value is None:
            continue
        embed["fields"].append(_field(name.replace("_", " ").capitalize(), value))
    return embed


def message(*, event: str, project_slug: str, project_name: str, data: dict[str, Any],
            timestamp: str) -> dict[str, Any]:
    """The Discord webhook body for `event` in a project."""
    if event in ("bug_created", "bug_updated", "bug_resolved", "comment_added"):
        embed = _bug_embed(event, project_slug, data)
    else:
        embed = _generic_embed(event, data)
    embed["footer"] = {"text": f"Bugnet · {project_name or project_slug}"}
    embed["timestamp"] = timestamp
    return {"username": "Bugnet", "embeds": [fit(embed)],
            "allowed_mentions": {"parse": []}}
