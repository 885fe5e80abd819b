"""The read models through a real worker and NATS: the bugs service's events arrive over
JetStream, a new key starts working and a replaced one stops; and a read model rebuilt from
scratch by replaying the stream into an empty database equals the live one."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import nats as nats_client
import sqlalchemy as sa
from flask.testing import FlaskClient

from analytics.migrate import MIGRATIONS
from analytics.models import BUS
from analytics.settings import AnalyticsSettings
from analytics.worker import readmodels_consumer
from bugnet_common import apikeys
from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event, payload
from bugnet_common.bus.worker import Worker
from bugnet_common.db import Database, migrate
from bugnet_common.testing import worker_thread
from servers import NatsInfo, PostgresInfo


def bugs_event(subject: str, data: Any) -> Event:
    return Event(type=subject, source="bugs", data=data if isinstance(data, dict)
                 else payload(data))


async def _publish(url: str, events: list[Event]) -> None:
    nc = await nats_client.connect(url)
    try:
        js = nc.jetstream()
        for e in events:
            await js.publish(e.type, e.to_json(), headers={"Nats-Msg-Id": e.id})
    finally:
        await nc.close()


def publish(url: str, *events: Event) -> None:
    asyncio.run(_publish(url, list(events)))


def wait_until(check: Callable[[], bool], timeout: float = 15.0) -> float:
    """Seconds until `check()` held; fails the test after `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "condition not reached in time"
        time.sleep(0.02)
    return time.monotonic() - started


def worker(settings: AnalyticsSettings, db: Database, durable: str) -> Worker:
    return Worker(service="analytics", nats_url=settings.nats_url, db=db, tables=BUS,
                  consumers=[readmodels_consumer(durable)], relay=False)


def snapshot(db: Database, project_id: str) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "projects": "SELECT id, slug, name, owner_id, settings::text, updated_at FROM projects"
                    " WHERE id = :p",
        "api_keys": "SELECT key_hash, created_at, superseded_at FROM api_keys"
                    " WHERE project_id = :p ORDER BY key_hash",
        "members": "SELECT user_id, role, permissions::text, updated_at FROM members"
                   " WHERE project_id = :p ORDER BY user_id",
        "bugs": "SELECT id, number, title, status, priority, category, platform, fingerprint,"
                " occurrences, created_at, resolved_at, last_seen_at FROM bugs"
                " WHERE project_id = :p ORDER BY number",
        "bug_occurrences": "SELECT event_id, bug_id, occurred_at, game_version, platform,"
                           " player_key FROM bug_occurrences WHERE project_id = :p"
                           " ORDER BY event_id",
    }
    with db.engine.connect() as conn:
        return {name: [tuple(r) for r in conn.execute(sa.text(q), {"p": project_id})]
                for name, q in queries.items()}


def test_keys_follow_the_stream_and_a_replay_rebuilds_the_read_model(
        client: FlaskClient, analytics_db: Database, analytics_settings: AnalyticsSettings,
        nats: NatsInfo, pg: PostgresInfo) -> None:
    project_id, slug = str(uuid.uuid4()), f"stream-{uuid.uuid4().hex[:8]}"
    owner = str(uuid.uuid4())
    key1, key2 = apikeys.generate_api_key(), apikeys.generate_api_key()
    bug_id = str(uuid.uuid4())
    bug = ev.BugSnapshot(
        id=bug_id, project_id=project_id, project_slug=slug, number=1, title="Crash on load",
        category="crash", priority="high", status="open", source="sdk", is_public=False,
        platform="win32", game_version="1.0", fingerprint="ab" * 8, assignee_id=None,
        reporter_user_id=None, created_at="2026-11-20T10:00:00Z", resolved_at=None,
        url=f"/api/projects/{slug}/bugs/{bug_id}")
    live = f"analytics-readmodels-{uuid.uuid4().hex[:8]}"

    def start(key: str, token: str) -> int:
        return client.post("/api/sessions/start", headers={"X-API-Key": key},
                           json={"session_token": token}).status_code

    with worker_thread(worker(analytics_settings, analytics_db, live)):
        publish(nats.url,
                bugs_event(subjects.PROJECT_CREATED, ev.ProjectChanged(
                    project_id=project_id, slug=slug, name="Stream", api_key_hash=apikeys
                    .hash_api_key(key1), owner_id=owner, settings={})),
                bugs_event(subjects.MEMBER_ADDED, ev.MemberChanged(
                    project_id=project_id, user_id=owner, role="owner",
                    permissions=["analytics.view", "bugs.view"])),
                bugs_event(subjects.BUG_CREATED, ev.BugChanged(bug=bug)),
                bugs_event(subjects.BUG_OCCURRED, {"bug": payload(bug), "occurrences": 2,
                                                   "game_version": "1.1", "platform": "linux",
                                                   "player_key": "steam:9"}))
        works = wait_until(lambda: start(key1, f"a-{uuid.uuid4().hex}") == 201)
        publish(nats.url, bugs_event(subjects.API_KEY_ROTATED, ev.ApiKeyRotated(
            project_id=project_id, api_key_hash=apikeys.hash_api_key(key2),
            previous_hash=apikeys.hash_api_key(key1))))
        rotated = wait_until(lambda: start(key2, f"b-{uuid.uuid4().hex}") == 201)
        stopped = wait_until(lambda: start(key1, f"c-{uuid.uuid4().hex}") == 401)
        print(f"new key worked after {works:.2f}s; rotated key worked after {rotated:.2f}s, "
              f"old one refused after {stopped:.2f}s")
        resolved = {**payload(bug), "status": "resolved",
                    "resolved_at": "2026-11-21T10:00:00Z"}
        publish(nats.url, bugs_event(subjects.BUG_RESOLVED, {"bug": resolved, "changes": {}}))
        wait_until(lambda: snapshot(analytics_db, project_id)["bugs"][0][3] == "resolved")
    original = snapshot(analytics_db, project_id)
    assert [k[2] is None for k in original["api_keys"]].count(True) == 1
    assert original["bugs"][0][8] == 2 and len(original["bug_occurrences"]) == 2

    # Rebuild: an empty database and a new durable consumer that reads the stream from the start.
    name = f"analytics_replay_{uuid.uuid4().hex[:8]}"
    url = pg.create_database(name)
    try:
        migrate(script_location=MIGRATIONS, url=url)
        replay_db = Database(url, pool_size=2)
        try:
            replay = f"analytics-readmodels-replay-{uuid.uuid4().hex[:8]}"
            with worker_thread(worker(analytics_settings, replay_db, replay)):
                wait_until(lambda: snapshot(replay_db, project_id) == original)
        finally:
            replay_db.engine.dispose()
    finally:
        pg.drop_database(name)
