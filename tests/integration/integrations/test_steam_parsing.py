"""The pure parts of the Steam area: the bug/crash word list and the review API's parsing
(no servers needed)."""

from __future__ import annotations

import json

import pytest

from bugnet_common import errors
from integrations.steam.client import parse_page
from integrations.steam.mentions import mentions


@pytest.mark.parametrize(("text", "terms"), [
    ("It CRASHED twice and then crashes again", ["crash"]),
    ("Buggy mess, so many bugs", ["bug"]),
    ("froze on the title screen; freezing in menus", ["freeze"]),
    ("A glitchy, broken error-filled release", ["glitch", "broken", "error"]),
    ("won't launch after the patch", ["won't launch"]),
    ("Does not start on Steam Deck", ["won't launch"]),
    ("black   screen and fps drops", ["black screen", "fps drops"]),
    ("I love the debug mode and the ladybug pet", []),
    ("Errorless, smooth, flawless", []),
    ("", []),
])
def test_review_text_is_flagged_by_whole_words(text: str, terms: list[str]) -> None:
    assert mentions(text) == terms


def page(**doc: object) -> bytes:
    return json.dumps({"success": 1, "cursor": "AoJ+/", **doc}).encode()


def test_a_page_parses_reviews_cursor_and_first_page_summary() -> None:
    got = parse_page(page(
        query_summary={"num_reviews": 1, "review_score": 8, "review_score_desc": "Very Positive",
                       "total_positive": 90, "total_negative": 10, "total_reviews": 100},
        reviews=[{"recommendationid": "123", "voted_up": False, "timestamp_created": 1764331200,
                  "timestamp_updated": 1764331300, "review": "crashes", "language": "english",
                  "votes_up": 3, "author": {"steamid": "76561198000000001",
                                            "playtime_at_review": 95}}]))
    assert got.cursor == "AoJ+/"
    assert got.summary == {"review_score": 8, "review_score_desc": "Very Positive",
                           "total_positive": 90, "total_negative": 10, "total_reviews": 100}
    [r] = got.reviews
    assert (r.recommendation_id, r.voted_up, r.votes_up, r.playtime_at_review_minutes) == (
        "123", False, 3, 95)
    assert r.created_at.isoformat() == "2025-11-28T12:00:00+00:00"
    assert r.author_steam_id == "76561198000000001"


def test_later_pages_have_no_totals() -> None:
    assert parse_page(page(query_summary={"num_reviews": 0}, reviews=[])).summary is None


@pytest.mark.parametrize("raw", [
    b"not json", b"[]", json.dumps({"success": 2}).encode(),
    page(reviews={"a": 1}),
    page(reviews=[{"recommendationid": "1", "voted_up": "yes", "timestamp_created": 1}]),
    page(reviews=[{"recommendationid": "x1", "voted_up": True, "timestamp_created": 1}]),
    page(reviews=[{"recommendationid": "1", "voted_up": True}]),
    page(reviews=["a review"]),
])
def test_anything_else_is_a_bad_gateway(raw: bytes) -> None:
    with pytest.raises(errors.BadGateway):
        parse_page(raw)
