"""API usage: the gateway's usage_counted events in, GET .../analytics/api-usage out.

The consumer runs in the real analytics worker against real NATS (events published to the
GATEWAY stream as the collector does); the report's numbers are checked exactly.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import date, timedelta
from typing import Any

import nats as nats_client
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from integration.analytics.support import Feeder, ProjectRef

from analytics.models import BUS
from analytics.settings import AnalyticsSettings
from analytics.usage.consumer import DURABLE, PENDING_SECONDS, apply_usage, usage_consumer
from analytics.usage.models import PENDING, USAGE
from bugnet_common import apikeys
from bugnet_common.bus import subjects
from bugnet_common.bus.events import (
    ApiKeyRotated,
    Event,
    UsageCount,
    UsageCounted,
    payload,
    utcnow,
)
from bugnet_common.bus.inbox import process
from bugnet_common.bus.subjects import USAGE_COUNTED
from bugnet_common.bus.worker import Worker
from bugnet_common.db import Database
from bugnet_common.testing import worker_thread

TODAY = utcnow().date()


def count(
    n: int,
    *,
    slug: str | None = None,
    key: str | None = None,
    group: str = "bugs",
    status: str = "2xx",
    day: date = TODAY,
    rate_limited: bool = False,
    refused: bool = False,
) -> UsageCount:
    return UsageCount(
        date=day.isoformat(),
        project_slug=slug,
        api_key_hash=apikeys.hash_api_key(key) if key else None,
        group=group,
        status_class=status,
        rate_limited=rate_limited,
        refused_by_gateway=refused,
        count=n,
    )


def usage_event(*counts: UsageCount, sequence: int = 1, instance: str | None = None) -> Event:
    instance = instance or f"test/{uuid.uuid4().hex[:8]}"
    data = UsageCounted(
        instance=instance,
        sequence=sequence,
        window_start="2026-11-28T00:00:00Z",
        window_end="2026-11-28T00:00:05Z",
        counts=list(counts),
    )
    return Event(type=USAGE_COUNTED, source="gateway", data=payload(data),
                 id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{instance}/{sequence}")))


def apply(db: Database, event: Event) -> bool:
    """Through the real inbox, as the consumer applies it."""
    return process(db, BUS, DURABLE, event, apply_usage)


def rows(db: Database) -> dict[tuple[str, str, str, str], tuple[int, int, int, int]]:
    u = USAGE.c
    with db.begin() as session:
        found = session.execute(sa.select(
            u.project_id, u.day, u.endpoint_group, u.status_class, u.requests, u.rate_limited,
            u.rate_limited_by_gateway, u.refused_by_gateway)).all()
    return {(r[0], r[1].isoformat(), r[2], r[3]): (r[4], r[5], r[6], r[7]) for r in found}


def get_usage(client: FlaskClient, project: ProjectRef, query: str = "") -> Any:
    response = client.get(f"/api/projects/{project.slug}/analytics/api-usage{query}",
                          headers=project.owner.headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["ok"] is True
    return body["data"]


# --- the consumer -------------------------------------------------------------------------------


def pending(db: Database) -> list[tuple[str | None, str | None, int]]:
    p = PENDING.c
    with db.begin() as session:
        found = session.execute(
            sa.select(p.project_slug, p.api_key_hash, p.requests).order_by(p.id)).all()
    return [tuple(r) for r in found]  # type: ignore[misc]


def test_counts_are_attributed_by_slug_or_key(analytics_db: Database, feed: Feeder) -> None:
    game = feed.project()
    other = feed.project()
    old_key = game.api_key
    feed.rotate_key(game)  # requests with the replaced key still count for the project
    event = usage_event(
        count(3, slug=game.slug, group="bugs"),
        count(2, key=game.api_key, group="sdk"),
        count(1, key=old_key, group="sdk", status="4xx"),
        count(4, key=game.api_key, group="sdk", status="4xx", rate_limited=True, refused=True),
        count(1, slug=game.slug, group="bugs", status="4xx", refused=True),
        count(5, slug=other.slug, group="labels"),
        count(9, group="auth"),  # outside any project: not stored at all
    )

    assert apply(analytics_db, event) is True
    assert apply(analytics_db, event) is False  # the same batch again: the inbox drops it

    today = TODAY.isoformat()
    assert rows(analytics_db) == {
        (game.id, today, "bugs", "2xx"): (3, 0, 0, 0),
        (game.id, today, "bugs", "4xx"): (1, 0, 0, 1),
        (game.id, today, "sdk", "2xx"): (2, 0, 0, 0),
        (game.id, today, "sdk", "4xx"): (5, 4, 4, 4),
        (other.id, today, "labels", "2xx"): (5, 0, 0, 0),
    }
    assert pending(analytics_db) == []

    # A later batch adds to the same rows.
    apply(analytics_db, usage_event(count(10, slug=game.slug), sequence=2))
    assert rows(analytics_db)[(game.id, today, "bugs", "2xx")] == (13, 0, 0, 0)


def test_counts_of_a_project_not_known_yet_wait_for_it(
    analytics_db: Database, feed: Feeder
) -> None:
    """The first requests of a new project often overtake its project_created event."""
    early_key = apikeys.generate_api_key()
    apply(analytics_db, usage_event(
        count(4, slug="brand-new-game"),
        count(2, key=early_key, group="sdk", status="4xx", rate_limited=True, refused=True),
        count(7, slug="never-a-project"),
    ))
    assert rows(analytics_db) == {}
    assert pending(analytics_db) == [
        ("brand-new-game", None, 4),
        (None, apikeys.hash_api_key(early_key), 2),
        ("never-a-project", None, 7),
    ]

    game = feed.project(slug="brand-new-game")
    feed.apply(subjects.API_KEY_ROTATED, ApiKeyRotated(
        project_id=game.id, api_key_hash=apikeys.hash_api_key(early_key),
        previous_hash=apikeys.hash_api_key(game.api_key)))
    apply(analytics_db, usage_event(count(1, slug=game.slug)))  # any later event retries them

    today = TODAY.isoformat()
    assert rows(analytics_db) == {
        (game.id, today, "bugs", "2xx"): (5, 0, 0, 0),
        (game.id, today, "sdk", "4xx"): (2, 2, 2, 2),
    }
    assert pending(analytics_db) == [("never-a-project", None, 7)]

    # Names that never become a project are forgotten after PENDING_SECONDS.
    with analytics_db.begin() as session:
        session.execute(sa.update(PENDING).values(
            received_at=utcnow() - timedelta(seconds=PENDING_SECONDS + 1)))
    apply(analytics_db, usage_event(count(1, slug=game.slug)))
    assert pending(analytics_db) == []
    assert rows(analytics_db)[(game.id, today, "bugs", "2xx")] == (6, 0, 0, 0)


def test_a_deleted_project_gets_no_counts(analytics_db: Database, feed: Feeder) -> None:
    game = feed.project()
    apply(analytics_db, usage_event(count(2, slug=game.slug)))
    assert rows(analytics_db) != {}
    feed.delete_project(game)
    assert rows(analytics_db) == {}  # project_deleted removed its rows
    apply(analytics_db, usage_event(count(3, slug=game.slug), count(1, key=game.api_key)))
    assert rows(analytics_db) == {}


def test_the_worker_consumes_usage_events_from_the_gateway_stream_once(
    analytics_db: Database, analytics_settings: AnalyticsSettings, feed: Feeder
) -> None:
    game = feed.project()
    first = usage_event(count(6, slug=game.slug), count(2, key=game.api_key, group="sdk"))
    second = usage_event(count(1, slug=game.slug, status="5xx"), sequence=2,
                         instance=first.data["instance"])

    async def publish(*events: tuple[Event, str]) -> None:
        nc = await nats_client.connect(analytics_settings.nats_url)
        try:
            js = nc.jetstream()
            for event, msg_id in events:
                await js.publish(USAGE_COUNTED, event.to_json(), headers={"Nats-Msg-Id": msg_id})
        finally:
            await nc.close()

    worker = Worker(service="analytics", nats_url=analytics_settings.nats_url, db=analytics_db,
                    tables=BUS, consumers=[usage_consumer(f"analytics-usage-{uuid.uuid4().hex[:8]}")],
                    relay=False)
    with worker_thread(worker):
        # The first batch twice under different message ids (JetStream cannot tell them
        # apart): the inbox applies it once.
        asyncio.run(publish((first, first.id), (first, f"{first.id}-resent"), (second, second.id)))
        today = TODAY.isoformat()
        expected = {
            (game.id, today, "bugs", "2xx"): (6, 0, 0, 0),
            (game.id, today, "sdk", "2xx"): (2, 0, 0, 0),
            (game.id, today, "bugs", "5xx"): (1, 0, 0, 0),
        }
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and rows(analytics_db) != expected:
            time.sleep(0.1)
        time.sleep(0.5)  # the duplicate would land now if it were applied twice
        assert rows(analytics_db) == expected


def test_a_malformed_batch_is_poison(analytics_db: Database) -> None:
    from bugnet_common.bus.inbox import PoisonMessage

    bad = Event(type=USAGE_COUNTED, source="gateway", data={"counts": [{"date": "nope"}]})
    with pytest.raises(PoisonMessage):
        apply(analytics_db, bad)
    with pytest.raises(PoisonMessage):
        apply(analytics_db, Event(type=USAGE_COUNTED, source="gateway", data={}))


# --- the report -----------------------------------------------------------------------------------


def test_report_per_day_with_groups_statuses_and_rate_limits(
    client: FlaskClient, analytics_db: Database, feed: Feeder
) -> None:
    game = feed.project()
    other = feed.project()
    yesterday = TODAY - timedelta(days=1)
    long_ago = TODAY - timedelta(days=40)
    apply(analytics_db, usage_event(
        count(10, slug=game.slug, group="bugs"),
        count(4, key=game.api_key, group="sdk"),
        count(3, key=game.api_key, group="sdk", status="4xx", rate_limited=True, refused=True),
        count(1, slug=game.slug, group="bugs", status="4xx", rate_limited=True),  # a service's 429
        count(2, slug=game.slug, group="integrations", status="5xx", refused=True),
        count(6, slug=game.slug, group="labels", day=yesterday),
        count(1, key=game.api_key, group="sessions", day=yesterday, status="3xx"),
        count(50, slug=game.slug, day=long_ago),  # outside the default 30 days
        count(99, slug=other.slug),  # another project
    ))

    data = get_usage(client, game)

    assert len(data["days"]) == 30
    assert data["days"][0]["date"] == (TODAY - timedelta(days=29)).isoformat()
    assert [d["date"] for d in data["days"][-2:]] == [yesterday.isoformat(), TODAY.isoformat()]
    empty = {"requests": 0, "by_group": {}, "by_status": {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0},
             "rate_limited": 0, "rate_limited_by_gateway": 0, "refused_by_gateway": 0}
    assert data["days"][0] == {"date": data["days"][0]["date"], **empty}
    assert data["days"][-1] == {
        "date": TODAY.isoformat(),
        "requests": 20,
        "by_group": {"bugs": 11, "sdk": 7, "integrations": 2},
        "by_status": {"2xx": 14, "3xx": 0, "4xx": 4, "5xx": 2},
        "rate_limited": 4,
        "rate_limited_by_gateway": 3,
        "refused_by_gateway": 5,
    }
    assert data["days"][-2] == {
        "date": yesterday.isoformat(),
        "requests": 7,
        "by_group": {"labels": 6, "sessions": 1},
        "by_status": {"2xx": 6, "3xx": 1, "4xx": 0, "5xx": 0},
        "rate_limited": 0,
        "rate_limited_by_gateway": 0,
        "refused_by_gateway": 0,
    }
    assert data["totals"] == {
        "days": 30,
        "from": (TODAY - timedelta(days=29)).isoformat(),
        "to": TODAY.isoformat(),
        "requests": 27,
        "by_group": {"bugs": 11, "sdk": 7, "labels": 6, "integrations": 2, "sessions": 1},
        "by_status": {"2xx": 20, "3xx": 1, "4xx": 4, "5xx": 2},
        "rate_limited": 4,
        "rate_limited_by_gateway": 3,
        "refused_by_gateway": 5,
    }

    one_day = get_usage(client, game, "?days=1")
    assert [d["date"] for d in one_day["days"]] == [TODAY.isoformat()]
    assert one_day["totals"]["requests"] == 20

    year = get_usage(client, game, "?days=365")
    assert len(year["days"]) == 365
    assert year["totals"]["requests"] == 77
    assert year["days"][-41]["by_group"] == {"bugs": 50}


@pytest.mark.parametrize("days", ["0", "366", "-3", "abc", "1.5"])
def test_days_out_of_range_is_a_400_naming_the_field(
    client: FlaskClient, feed: Feeder, days: str
) -> None:
    game = feed.project()
    response = client.get(f"/api/projects/{game.slug}/analytics/api-usage?days={days}",
                          headers=game.owner.headers)
    assert response.status_code == 400
    body = response.get_json()
    assert body["ok"] is False and "days" in body["error"] and "days" in body["details"]


def test_who_may_see_the_report(client: FlaskClient, feed: Feeder) -> None:
    game = feed.project()
    stranger = feed.user("stranger")
    viewer = feed.user("viewer")
    blind = feed.user("blind")
    feed.member(game, viewer, "member")
    feed.member(game, blind, "member", permissions=["bugs.view"])
    path = f"/api/projects/{game.slug}/analytics/api-usage"

    assert client.get(path).status_code == 401
    assert client.get(path, headers=stranger.headers).status_code == 404
    assert client.get("/api/projects/nope-nope/analytics/api-usage",
                      headers=viewer.headers).status_code == 404
    assert client.get(path, headers=blind.headers).status_code == 403
    assert client.get(path, headers=viewer.headers).status_code == 200
