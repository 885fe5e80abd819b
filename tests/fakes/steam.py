"""A fake Steam store review API: `GET /appreviews/{app_id}?json=1&filter=recent&cursor=…`.

Reviews of each app are kept newest first (as `filter=recent` returns them). Pages hold
`num_per_page` reviews (at most 100); the `cursor` is opaque (base64 with `+` and `/`, as
Steam's are) and, past the last review, Steam answers an empty `reviews` list with the same
cursor. `query_summary` carries the totals only on the first page (`cursor=*`).
"""

from __future__ import annotations

import base64
import itertools
from datetime import UTC, datetime
from typing import Any

from fakes.base import Answer, FakeServer, Request

_ids = itertools.count(150_000_001)


def review(text: str = "Fun game", *, voted_up: bool = True, at: datetime | None = None,
           language: str = "english", steam_id: str | None = None) -> dict[str, Any]:
    """A review in the API's shape."""
    rid = next(_ids)
    ts = int((at or datetime.now(UTC)).timestamp())
    return {
        "recommendationid": str(rid),
        "author": {"steamid": steam_id or f"7656119{rid:010d}", "num_games_owned": 12,
                   "num_reviews": 3, "playtime_forever": 600, "playtime_last_two_weeks": 60,
                   "playtime_at_review": 420, "last_played": ts},
        "language": language, "review": text, "timestamp_created": ts, "timestamp_updated": ts,
        "voted_up": voted_up, "votes_up": 2, "votes_funny": 0, "weighted_vote_score": "0.5",
        "comment_count": 0, "steam_purchase": True, "received_for_free": False,
        "written_during_early_access": False,
    }


def _cursor(offset: int) -> str:
    # Steam's cursors are base64 and contain '+', '/' and '=': they must be URL-encoded.
    return "AoJ" + base64.b64encode(f"\xfb\xff{offset:08d}".encode("latin-1")).decode() + "+/"


def _offset(cursor: str) -> int | None:
    if cursor == "*":
        return 0
    try:
        raw = base64.b64decode(cursor[3:-2]).decode("latin-1")
        return int(raw[2:])
    except ValueError:
        return None


class FakeSteam(FakeServer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.apps: dict[int, list[dict[str, Any]]] = {}

    def add(self, app_id: int, *reviews: dict[str, Any]) -> None:
        """Publish reviews (newer than those already there)."""
        self.apps.setdefault(app_id, [])[:0] = sorted(
            reviews, key=lambda r: r["timestamp_created"], reverse=True)

    def handle(self, request: Request) -> Answer:
        parts = request.path.strip("/").split("/")
        if request.method != "GET" or len(parts) != 2 or parts[0] != "appreviews":
            return Answer(404, b"<html>Not Found</html>", content_type="text/html")
        if request.query.get("json") != "1":
            return Answer(200, b"<html>reviews</html>", content_type="text/html")
        if not parts[1].isdigit():
            return Answer.of(200, {"success": 2})
        reviews = self.apps.get(int(parts[1]), [])
        cursor = request.query.get("cursor", "*")
        offset = _offset(cursor)
        if offset is None:
            return Answer.of(200, {"success": 2})
        size = max(1, min(int(request.query.get("num_per_page") or 20), 100))
        page = reviews[offset:offset + size]
        doc: dict[str, Any] = {"success": 1}
        if cursor == "*":
            positive = sum(1 for r in reviews if r["voted_up"])
            doc["query_summary"] = {
                "num_reviews": len(page), "review_score": 6 if reviews else 0,
                "review_score_desc": "Mostly Positive" if reviews else "No user reviews",
                "total_positive": positive, "total_negative": len(reviews) - positive,
                "total_reviews": len(reviews)}
        else:
            doc["query_summary"] = {"num_reviews": len(page)}
        doc["reviews"] = page
        doc["cursor"] = _cursor(offset + len(page)) if page else cursor
        return Answer.of(200, doc)
