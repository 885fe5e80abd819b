"""Subjects, the event envelope and API-key helpers."""

from __future__ import annotations

import re

import pytest

from bugnet_common import apikeys
from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event

SUBJECT = re.compile(r"^bugnet\.(auth|bugs|analytics|integrations|gateway)\.v1\.[a-z_]+$")


def all_event_subjects() -> list[str]:
    return [v for k, v in vars(subjects).items()
            if k.isupper() and isinstance(v, str) and v != subjects.EXPORT_REQUESTED]


def test_every_subject_follows_the_naming_rule_and_has_a_stream() -> None:
    names = all_event_subjects()
    assert len(names) == len(set(names)) >= 20
    for name in names:
        assert SUBJECT.match(name), name
        assert subjects.stream_for(name)


def test_rpc_subject_is_outside_every_stream() -> None:
    with pytest.raises(ValueError):
        subjects.stream_for(subjects.EXPORT_REQUESTED)


def test_event_envelope_round_trips() -> None:
    event = Event(type=subjects.USER_DELETED, source="auth", data={"user_id": "u"},
                  correlation_id="req-1")
    back = Event.from_json(event.to_json())
    assert back == event
    assert back.time.endswith("Z")


@pytest.mark.parametrize("raw", [b"[]", b"{}", b"not json", b'{"id": "x"}'])
def test_non_envelopes_are_rejected(raw: bytes) -> None:
    with pytest.raises(ValueError):
        Event.from_json(raw)


def test_api_keys_are_well_formed_hashed_and_masked() -> None:
    key = apikeys.generate_api_key()
    assert key.startswith("sk_live_") and len(key) >= 8 + 32
    assert apikeys.is_well_formed(key)
    assert not apikeys.is_well_formed("sk_live_short")
    assert not apikeys.is_well_formed("sk_test_" + "a" * 40)
    digest = apikeys.hash_api_key(key)
    assert key not in digest and apikeys.matches(key, digest)
    assert not apikeys.matches(apikeys.generate_api_key(), digest)
    assert apikeys.mask_api_key(key) == f"sk_live_…{key[-4:]}"
    assert apikeys.generate_api_key() != key
