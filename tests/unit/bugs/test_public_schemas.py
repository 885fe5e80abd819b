"""Request shapes of the public area: partial updates, ids, colors and URLs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bugs.public.schemas import (
    BrandingIn,
    ChangelogIn,
    ChangelogPatch,
    PublicBugFilters,
    PublicBugIn,
    TrackerIn,
)

BUG_ID = "0b7e6a4e-5d1c-4c1e-9a57-3f0f2b7c9d10"


def _fields(exc: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {".".join(str(p) for p in err["loc"]) for err in exc.value.errors()}


def test_tracker_update_names_only_the_fields_sent_and_refuses_null_switches() -> None:
    data = TrackerIn.model_validate({"title": None, "allow_voting": False, "junk": 1})
    assert data.model_fields_set == {"title", "allow_voting"}
    with pytest.raises(ValidationError) as exc:
        TrackerIn.model_validate({"enabled": None, "show_categories": "true"})
    assert _fields(exc) == {"enabled", "show_categories"}


def test_changelog_bug_ids_must_be_canonical_uuids_and_are_lowercased() -> None:
    data = ChangelogIn.model_validate({"version": " 1.0 ", "title": "Patch",
                                       "bug_ids": [BUG_ID.upper()]})
    assert data.version == "1.0" and data.bug_ids == [BUG_ID] and data.published is False
    for bad in ("nope", BUG_ID.replace("-", ""), "{" + BUG_ID + "}", 5):
        with pytest.raises(ValidationError) as exc:
            ChangelogIn.model_validate({"version": "1", "title": "t", "bug_ids": [bad]})
        assert _fields(exc) == {"bug_ids.0"}, bad
    with pytest.raises(ValidationError):
        ChangelogIn.model_validate({"version": "1", "title": "t", "bug_ids": [BUG_ID] * 501})


def test_changelog_patch_refuses_null_but_leaves_missing_fields_alone() -> None:
    assert ChangelogPatch.model_validate({}).model_fields_set == set()
    with pytest.raises(ValidationError) as exc:
        ChangelogPatch.model_validate({"version": None, "bug_ids": None})
    assert _fields(exc) == {"version", "bug_ids"}


@pytest.mark.parametrize("url", ["https://cdn.example/logo.png", "http://x.example",
                                 "HTTPS://x.example/a?b=c"])
def test_branding_accepts_http_urls(url: str) -> None:
    assert BrandingIn.model_validate({"logo_url": url}).logo_url == url


@pytest.mark.parametrize("body", [{"logo_url": "javascript:alert(1)"}, {"logo_url": "https://"},
                                  {"logo_url": "data:image/png;base64,AAAA"},
                                  {"logo_url": "https://a b.example"},
                                  {"primary_color": "#abc"}, {"accent_color": "rgb(1,2,3)"},
                                  {"primary_color": "#gggggg"}])
def test_branding_refuses_other_urls_and_colors(body: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        BrandingIn.model_validate(body)


def test_colors_are_lowercased_and_null_clears() -> None:
    data = BrandingIn.model_validate({"primary_color": "#AABBCC", "accent_color": None})
    assert data.primary_color == "#aabbcc" and data.model_fields_set == {"primary_color",
                                                                         "accent_color"}


def test_public_filters_know_only_the_public_sorts() -> None:
    assert PublicBugFilters.model_validate({"sort": "votes", "page": "2"}).sort == "votes"
    with pytest.raises(ValidationError):
        PublicBugFilters.model_validate({"sort": "priority"})


def test_a_player_report_needs_a_title_and_a_description() -> None:
    with pytest.raises(ValidationError) as exc:
        PublicBugIn.model_validate({"title": " ", "description": ""})
    assert _fields(exc) == {"title", "description"}
