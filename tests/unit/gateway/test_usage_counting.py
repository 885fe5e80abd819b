"""The usage collector's counting: groups, projects, status classes, aggregation, batches."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bugnet_common.apikeys import generate_api_key, hash_api_key
from bugnet_common.bus.events import Event
from bugnet_common.bus.subjects import USAGE_COUNTED
from bugnet_gateway.routes import FAMILIES
from bugnet_gateway.usage import als
from bugnet_gateway.usage.collector import Collector, CollectorSettings, event_id
from bugnet_gateway.usage.counter import (
    Request,
    UsageCounter,
    UsageKey,
    chunks,
    hash_key,
    key_for,
    to_usage_counts,
)
from bugnet_gateway.usage.grouping import FAMILY_GROUPS, GROUPS, classify_path, status_class

NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


# --- groups and projects --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "group", "slug"),
    [
        ("POST", "/api/auth/login", "auth", None),
        ("GET", "/api/auth/login", "auth", None),
        ("POST", "/api/v1/auth/signup", "auth", None),
        ("GET", "/api/auth/me", "auth", None),
        ("GET", "/api/auth/jwks.json", "auth", None),
        ("GET", "/api/health", "other", None),
        ("GET", "/api/docs/index.html", "other", None),
        ("GET", "/api/projects", "projects", None),
        ("POST", "/api/projects", "projects", None),
        ("GET", "/api/projects/my-game", "projects", "my-game"),
        ("POST", "/api/projects/my-game/api-key/regenerate", "projects", "my-game"),
        ("PUT", "/api/projects/my-game/tracker", "projects", "my-game"),
        ("GET", "/api/projects/my-game/changelogs", "projects", "my-game"),
        ("GET", "/api/projects/my-game/bugs", "bugs", "my-game"),
        ("GET", "/api/v1/projects/my-game/bugs?status=open&page=2", "bugs", "my-game"),
        ("POST", "/api/projects/my-game/bugs/abc/comments", "bugs", "my-game"),
        ("GET", "/api/projects/my-game/labels", "labels", "my-game"),
        ("GET", "/api/projects/my-game/team", "team", "my-game"),
        ("GET", "/api/projects/my-game/permissions", "team", "my-game"),
        ("POST", "/api/invitations/tok123/accept", "team", None),
        ("GET", "/api/projects/my-game/public/bugs", "public", "my-game"),
        ("POST", "/api/projects/my-game/bugs/abc/upvote", "public", "my-game"),
        ("POST", "/api/bugs/submit", "sdk", None),
        ("GET", "/api/v1/bugs/settings", "sdk", None),
        ("POST", "/api/session-replays", "sdk", None),
        ("POST", "/api/sessions/start", "sessions", None),
        ("POST", "/api/sessions/end", "sessions", None),
        ("POST", "/api/perf/snapshot", "perf", None),
        ("POST", "/api/satisfaction", "satisfaction", None),
        ("GET", "/api/projects/my-game/analytics", "analytics", "my-game"),
        ("GET", "/api/projects/my-game/analytics/api-usage?days=7", "analytics", "my-game"),
        ("GET", "/api/projects/my-game/bugs/abc/performance", "analytics", "my-game"),
        ("POST", "/api/projects/my-game/regressions/detect", "regressions", "my-game"),
        ("GET", "/api/projects/my-game/webhooks", "integrations", "my-game"),
        ("GET", "/api/projects/my-game/integrations/discord", "integrations", "my-game"),
        ("POST", "/api/projects/my-game/bugs/abc/git-issue", "integrations", "my-game"),
        ("GET", "/api/projects/my-game/alerts", "integrations", "my-game"),
        ("GET", "/api/notifications", "notifications", None),
        ("GET", "/api/nothing/here", "other", None),
        ("GET", "/favicon.ico", "other", None),
        ("GET", "/api/projects/Not_A_Slug/bugs", "other", None),
    ],
)
def test_classify_path(method: str, path: str, group: str, slug: str | None) -> None:
    assert classify_path(method, path) == (group, slug)


def test_every_route_family_has_a_known_group() -> None:
    for family in FAMILIES:
        if family.name == "bugs.project":
            continue  # grouped by the sub-path (see test_classify_path)
        assert FAMILY_GROUPS[family.name] in GROUPS, family.name
    assert set(FAMILY_GROUPS.values()) <= set(GROUPS)


@pytest.mark.parametrize(
    ("code", "expected"),
    [(200, "2xx"), (201, "2xx"), (304, "3xx"), (401, "4xx"), (429, "4xx"), (503, "5xx"), (0, "none")],
)
def test_status_class(code: int, expected: str) -> None:
    assert status_class(code) == expected


# --- API keys ------------------------------------------------------------------------------------


def test_hash_key_matches_the_stored_hash_of_bugnet_common() -> None:
    key = generate_api_key()
    assert hash_key(key) == hash_api_key(key)
    assert hash_key(f"  {key} ") == hash_api_key(key)


@pytest.mark.parametrize("value", [None, "", "nope", "sk_live_short", "Bearer sk_live_" + "a" * 40])
def test_malformed_keys_name_no_project(value: str | None) -> None:
    assert hash_key(value) is None


def test_a_request_never_shows_its_key() -> None:
    key = generate_api_key()
    request = Request(NOON, "GET", "/api/bugs/settings", 200, False, api_key=key)
    assert key not in repr(request)
    assert key not in str(request)
    assert key not in repr(key_for(request))


# --- keys of requests -------------------------------------------------------------------------


def test_sdk_requests_are_attributed_by_key_and_project_routes_by_slug() -> None:
    key = generate_api_key()
    sdk = key_for(Request(NOON, "POST", "/api/bugs/submit", 201, False, api_key=key))
    assert sdk == UsageKey("2026-11-28", None, hash_api_key(key), "sdk", "2xx", False, False)
    # On a project route the slug names the project; the key is not needed (nor kept).
    routed = key_for(Request(NOON, "GET", "/api/projects/g1/bugs", 200, False, api_key=key))
    assert routed == UsageKey("2026-11-28", "g1", None, "bugs", "2xx", False, False)


def test_a_429_is_rate_limited_whoever_answered_it() -> None:
    by_gateway = key_for(Request(NOON, "GET", "/api/bugs/settings", 429, True))
    by_service = key_for(Request(NOON, "POST", "/api/auth/login", 429, False))
    assert (by_gateway.rate_limited, by_gateway.refused_by_gateway) == (True, True)
    assert (by_service.rate_limited, by_service.refused_by_gateway) == (True, False)
    assert not key_for(Request(NOON, "GET", "/api/health", 401, True)).rate_limited


def test_days_are_utc() -> None:
    late_in_new_york = datetime(2026, 11, 28, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert key_for(Request(late_in_new_york, "GET", "/api/health", 200, False)).date == "2026-11-29"
    naive = datetime(2026, 11, 28, 23, 59)
    assert key_for(Request(naive, "GET", "/api/health", 200, False)).date == "2026-11-28"


# --- aggregation ----------------------------------------------------------------------------------


def _key(group: str = "bugs", slug: str | None = "g1", status: str = "2xx") -> UsageKey:
    return UsageKey("2026-11-28", slug, None, group, status, False, False)


def test_counter_adds_takes_and_restores() -> None:
    counter = UsageCounter()
    for _ in range(3):
        counter.add(Request(NOON, "GET", "/api/projects/g1/bugs", 200, False))
    counter.add(Request(NOON, "GET", "/api/projects/g1/bugs", 500, False))
    assert counter.total == 4 and len(counter) == 2

    taken = counter.take()
    assert taken == {_key(): 3, _key(status="5xx"): 1}
    assert not counter and counter.total == 0

    counter.add(Request(NOON, "GET", "/api/projects/g1/bugs", 200, False))
    counter.restore(taken)  # merged, not replaced
    assert counter.snapshot() == {_key(): 4, _key(status="5xx"): 1}


def test_counter_memory_is_bounded_by_dropping_attribution() -> None:
    counter = UsageCounter(max_keys=2)
    counter.add_key(_key(slug="a"))
    counter.add_key(_key(slug="b"))
    counter.add_key(_key(slug="c"), 5)  # a third key: kept, but without its project
    counter.add_key(_key(slug="a"))  # known keys still count normally
    assert counter.snapshot() == {_key(slug="a"): 2, _key(slug="b"): 1, _key(slug=None): 5}
    assert counter.unattributed == 5
    assert counter.total == 8


def test_counts_become_contract_items_in_a_stable_order() -> None:
    counts = {_key(slug="b"): 2, _key(slug=None): 1, _key(slug="a"): 4}
    items = to_usage_counts(counts)
    assert [(i.project_slug, i.count) for i in items] == [(None, 1), ("a", 4), ("b", 2)]
    assert items[1].group == "bugs" and items[1].date == "2026-11-28"


def test_chunks_split_without_losing_counts() -> None:
    counts = {_key(slug=f"p{i}"): i + 1 for i in range(7)}
    parts = list(chunks(counts, 3))
    assert [len(p) for p in parts] == [3, 3, 1]
    merged: dict[UsageKey, int] = {}
    for part in parts:
        merged.update(part)
    assert merged == counts


# --- the access-log entries -----------------------------------------------------------------------


def _message(*entries: dict[str, object]) -> bytes:
    message = als.StreamAccessLogsMessage()
    message.identifier.log_name = "bugnet-usage"
    for spec in entries:
        entry = message.http_logs.log_entry.add()
        entry.common_properties.start_time.seconds = int(NOON.timestamp())
        entry.request.request_method = int(spec.get("method", 1))  # type: ignore[call-overload]
        entry.request.path = str(spec.get("path", "/api/health"))
        if "original_path" in spec:
            entry.request.original_path = str(spec["original_path"])
        for name, value in dict(spec.get("headers", {})).items():  # type: ignore[call-overload]
            header = entry.request.request_headers.add()
            header.key, header.value = name, value
        entry.response.response_code.value = int(spec.get("status", 200))  # type: ignore[call-overload]
        if "details" in spec:
            entry.response.response_code_details = str(spec["details"])
        if spec.get("upstream"):
            entry.common_properties.upstream_remote_address.socket_address.address = "127.0.0.1"
        if spec.get("rate_limited_flag"):
            entry.common_properties.response_flags.rate_limited = True
        if spec.get("intermediate"):
            entry.common_properties.intermediate_log_entry = True
    data: bytes = message.SerializeToString()
    return data


def _decode(raw: bytes) -> object:
    return als.StreamAccessLogsMessage.FromString(raw)


def test_entries_become_requests() -> None:
    key = generate_api_key()
    message = _decode(
        _message(
            {
                "method": 3,
                "path": "/api/bugs/submit",
                "original_path": "/api/v1/bugs/submit",
                "headers": {"x-api-key": key},
                "status": 201,
                "details": "via_upstream",
            }
        )
    )
    (entry,) = message.http_logs.log_entry  # type: ignore[attr-defined]
    request = als.to_request(entry)
    assert request is not None
    assert (request.method, request.path, request.status) == ("POST", "/api/v1/bugs/submit", 201)
    assert request.api_key == key and request.started_at == NOON
    assert request.refused_by_gateway is False


@pytest.mark.parametrize(
    ("spec", "refused"),
    [
        ({"details": "via_upstream", "status": 503}, False),
        ({"details": "local_rate_limited", "status": 429}, True),
        ({"details": "jwt_authn_access_denied{Jwt_is_missing}", "status": 401}, True),
        ({"details": "cluster_not_found", "status": 404}, True),
        ({"details": "upstream_reset_before_response_started{connection_failure}", "status": 503}, True),
        # No details (an older Envoy): an upstream host without a local-reply flag was served.
        ({"upstream": True, "status": 200}, False),
        ({"upstream": True, "rate_limited_flag": True, "status": 429}, True),
        ({"status": 404}, True),
    ],
)
def test_refused_by_gateway(spec: dict[str, object], refused: bool) -> None:
    message = _decode(_message(spec))
    (entry,) = message.http_logs.log_entry  # type: ignore[attr-defined]
    assert als.refused_by_gateway(entry) is refused


def test_collector_records_final_entries_only() -> None:
    collector = Collector(CollectorSettings(port=1, name="unit"))
    raw = _message(
        {"path": "/api/projects/g1/bugs", "details": "via_upstream"},
        {"path": "/api/projects/g1/bugs", "details": "via_upstream", "intermediate": True},
        {"path": "/api/projects/g1/bugs", "status": 401, "details": "jwt_authn_access_denied"},
    )
    assert collector.record(_decode(raw)) == 2
    assert collector.counter.snapshot() == {
        _key(): 1,
        UsageKey("2026-11-28", "g1", None, "bugs", "4xx", False, True): 1,
    }
    assert (collector.stats.entries, collector.stats.counted) == (3, 2)


# --- batches ---------------------------------------------------------------------------------------


def test_batches_have_deterministic_ids_and_wait_until_acked() -> None:
    collector = Collector(CollectorSettings(port=1, name="unit", batch_size=2))
    assert collector.instance.startswith("unit/")
    assert collector.seal() == []  # nothing counted, nothing sealed

    for slug in ("a", "b", "c"):
        collector.counter.add_key(_key(slug=slug), 2)
    first = collector.seal()
    assert [b.requests for b in first] == [4, 2]  # two events: at most 2 counts each
    events: list[Event] = [b.event for b in first]
    assert [e.data["sequence"] for e in events] == [1, 2]
    assert [e.id for e in events] == [event_id(collector.instance, n) for n in (1, 2)]
    assert all(e.type == USAGE_COUNTED and e.source == "gateway" for e in events)
    decoded = json.loads(events[0].to_json())
    assert decoded["data"]["counts"][0] == {
        "date": "2026-11-28",
        "project_slug": "a",
        "api_key_hash": None,
        "group": "bugs",
        "status_class": "2xx",
        "rate_limited": False,
        "refused_by_gateway": False,
        "count": 2,
    }
    assert events[0].data["window_end"] == events[1].data["window_end"]

    # While sealed batches wait for their ack, new counts accumulate and are not sealed.
    collector.counter.add_key(_key(slug="a"))
    assert collector.seal() == []
    assert collector.counter.total == 1
    collector.pending.clear()  # as if acked
    (third,) = collector.seal()
    assert third.event.data["sequence"] == 3
    assert third.event.data["window_start"] == events[0].data["window_end"]


def test_event_ids_differ_between_instances_and_sequences() -> None:
    a = Collector(CollectorSettings(port=1, name="same"))
    b = Collector(CollectorSettings(port=1, name="same"))
    assert a.instance != b.instance  # a restart never reuses ids
    assert event_id(a.instance, 1) != event_id(b.instance, 1)
    assert event_id(a.instance, 1) == event_id(a.instance, 1)
    assert event_id(a.instance, 1) != event_id(a.instance, 2)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="flush_seconds"):
        CollectorSettings(port=1, flush_seconds=0)
    with pytest.raises(ValueError, match="batch_size"):
        CollectorSettings(port=1, batch_size=0)
