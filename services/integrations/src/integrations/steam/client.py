"""The Steam store review API (`GET {steam_store_url}/appreviews/{app_id}?json=1&...`).

One page is up to 100 reviews, newest first (`filter=recent`), and a `cursor` for the next
page. Anything but a 200 with `success: 1` and a list of well-formed reviews is a 502
(`BadGateway`) naming what Steam did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from bugnet_common import errors

PAGE_SIZE = 100
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
SUMMARY_KEYS = ("review_score", "review_score_desc", "total_positive", "total_negative",
                "total_reviews")


@dataclass(frozen=True)
class Review:
    recommendation_id: str
    author_steam_id: str | None
    language: str | None
    review: str
    voted_up: bool
    votes_up: int
    playtime_at_review_minutes: int | None
    created_at: datetime
    updated_at: datetime | None


@dataclass(frozen=True)
class Page:
    reviews: list[Review]
    cursor: str | None
    summary: dict[str, Any] | None


def _garbage(what: str) -> errors.BadGateway:
    return errors.BadGateway(f"Steam answered with an unexpected body ({what})")


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _timestamp(value: Any) -> datetime | None:
    seconds = _int(value)
    if seconds is None or seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_review(raw: Any) -> Review:
    """One entry of `reviews`; BadGateway when a required field is missing or mistyped."""
    if not isinstance(raw, dict):
        raise _garbage("a review is not an object")
    rid = raw.get("recommendationid")
    rid = str(rid) if _int(rid) is not None else None
    voted_up = raw.get("voted_up")
    created = _timestamp(raw.get("timestamp_created"))
    if rid is None or len(rid) > 32 or not isinstance(voted_up, bool) or created is None:
        raise _garbage("a review without recommendationid, voted_up or timestamp_created")
    author_raw = raw.get("author")
    author: dict[str, Any] = author_raw if isinstance(author_raw, dict) else {}
    steam_id = author.get("steamid")
    language = raw.get("language")
    text = raw.get("review")
    return Review(
        recommendation_id=rid,
        author_steam_id=str(steam_id)[:32] if isinstance(steam_id, str | int) else None,
        language=language[:32] if isinstance(language, str) else None,
        review=text if isinstance(text, str) else "",
        voted_up=voted_up,
        votes_up=max(_int(raw.get("votes_up")) or 0, 0),
        playtime_at_review_minutes=_int(author.get("playtime_at_review")),
        created_at=created, updated_at=_timestamp(raw.get("timestamp_updated")))


def parse_page(raw: bytes) -> Page:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _garbage("not JSON") from None
    if not isinstance(doc, dict):
        raise _garbage("not an object")
    if doc.get("success") != 1:
        raise errors.BadGateway(f"Steam refused the request (success={doc.get('success')!r}); "
                                "check the app id")
    reviews = doc.get("reviews", [])
    if not isinstance(reviews, list):
        raise _garbage("'reviews' is not a list")
    cursor = doc.get("cursor")
    summary = doc.get("query_summary")
    return Page(reviews=[parse_review(r) for r in reviews],
                cursor=cursor if isinstance(cursor, str) and cursor else None,
                summary=({k: summary[k] for k in SUMMARY_KEYS if k in summary}
                         if isinstance(summary, dict) and "total_reviews" in summary else None))


def fetch_page(client: httpx.Client, *, base_url: str, app_id: int, cursor: str,
               timeout: float) -> Page:
    """One page of the app's reviews, newest first, from `cursor` ("*" for the first)."""
    params = {"json": "1", "filter": "recent", "num_per_page": str(PAGE_SIZE), "cursor": cursor,
              "language": "all", "purchase_type": "all"}
    url = f"{base_url.rstrip('/')}/appreviews/{app_id}"
    try:
        with client.stream("GET", url, params=params, timeout=timeout) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise _garbage("larger than 8 MiB")
                chunks.append(chunk)
    except httpx.TimeoutException:
        raise errors.BadGateway(f"Steam did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise errors.BadGateway(f"Steam could not be reached ({type(exc).__name__})") from None
    if response.status_code != 200:
        hint = ": try again later" if response.status_code >= 500 or response.status_code == 429 else ""
        raise errors.BadGateway(f"Steam answered {response.status_code}{hint}",
                                details={"provider_status": response.status_code})
    return parse_page(b"".join(chunks))
