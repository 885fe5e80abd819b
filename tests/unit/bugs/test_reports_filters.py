"""Parsing GET /bugs's query string and the search words."""

from __future__ import annotations

import pytest

from bugnet_common import errors
from bugs.reports.schemas import BugFilters, BugPatch, filters_from_args
from bugs.reports.search import search_terms

ME = "6f1c2b3a-0000-4000-8000-000000000001"


def test_comma_separated_enum_lists_are_split_trimmed_and_deduplicated() -> None:
    parsed = filters_from_args({"status": "open, in_progress,open", "priority": "high",
                                "category": ""}, me=ME)
    assert parsed.statuses == ("open", "in_progress") and parsed.priorities == ("high",)
    assert parsed.categories == () and parsed.sort is None


def test_assignee_me_becomes_the_caller_and_ids_are_lowercased() -> None:
    assert filters_from_args({"assignee": "me"}, me=ME).assignee == ME
    assert filters_from_args({"assignee": "NONE"}, me=ME).assignee == "none"
    assert filters_from_args({"assignee": ME.upper()}, me=ME).assignee == ME


@pytest.mark.parametrize("args", [{"status": "opened"}, {"sort": "best"}, {"assignee": "bob"},
                                  {"priority": "low,p0"}, {"category": "crash,bug"}])
def test_unknown_values_name_their_field(args) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(errors.ValidationFailed) as caught:
        filters_from_args(args, me=ME)
    assert next(iter(args)) in caught.value.details  # type: ignore[operator]


def test_empty_filters_are_no_filters() -> None:
    assert filters_from_args({"search": "  ", "platform": ""}, me=ME) == BugFilters()


def test_search_words_are_lowercased_unique_and_capped() -> None:
    assert search_terms("Texture TEXTURE flicker, alt-tab!") == ["texture", "flicker", "alt", "tab"]
    assert len(search_terms(" ".join(f"w{i}" for i in range(20)))) == 8
    assert search_terms("the door is stuck") == ["door", "stuck"]
    assert search_terms("The It") == ["the", "it"]  # nothing else to search for


def test_patch_keeps_only_sent_fields_and_a_null_assignee() -> None:
    patch = BugPatch.model_validate({"title": "x", "assignee": None, "priority": None})
    assert patch.changes() == {"title": "x", "assignee": None}
