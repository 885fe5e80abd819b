"""Sessions keep flowing through the whole stack while PostgreSQL restarts and while NATS
restarts; afterwards every accepted start and end is counted exactly once.

Game clients send start/end pairs continuously from several threads and record each answer.
Requests sent while the database is away wait in the service's batch writer (up to
`batching.OUTAGE_SECONDS`) and are answered once it is back, or fail (5xx) — a failed request
may still have been stored (its answer lost), so for those the test only checks "at most
once". Run with `make test-faults` (marked heavy: it starts its own stack).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from typing import Any

import httpx
import psycopg
import pytest

from bugnet_stack import Stack

pytestmark = [pytest.mark.heavy, pytest.mark.timeout(900)]

SENDERS = 6
CRASH_EVERY = 3


class Game:
    """Threads sending start/end pairs and recording what was accepted."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.accepted: dict[str, set[str]] = defaultdict(set)  # token -> {"start", "end", "crash"}
        self.sent: dict[str, set[str]] = defaultdict(set)
        self.failures: dict[str, int] = defaultdict(int)
        self.slowest = 0.0  # seconds: requests held through an outage take long
        self.threads = [threading.Thread(target=self.play, args=(n,), daemon=True)
                        for n in range(SENDERS)]

    def play(self, n: int) -> None:
        with httpx.Client(base_url=self.base_url, timeout=40.0, trust_env=False) as client:
            i = 0
            while not self.stop.is_set():
                i += 1
                token = f"f{n}-{i}-{uuid.uuid4().hex[:6]}"
                crashed = i % CRASH_EVERY == 0
                self.send(client, token, "start", "/api/sessions/start", 201,
                          {"session_token": token, "platform": "Windows",
                           "game_version": "1.0", "steam_id": f"{n}{i % 7}"})
                self.send(client, token, "crash" if crashed else "end", "/api/sessions/end",
                          200, {"session_token": token, "crashed": crashed})

    def send(self, client: httpx.Client, token: str, kind: str, path: str, status: int,
             body: dict[str, Any]) -> None:
        with self.lock:
            self.sent[token].add(kind)
        began = time.monotonic()
        try:
            r = client.post(path, json=body, headers={"X-API-Key": self.api_key})
            ok = r.status_code == status
            failure = "" if ok else str(r.status_code)
        except httpx.HTTPError as exc:
            ok, failure = False, type(exc).__name__
            time.sleep(0.05)
        with self.lock:
            self.slowest = max(self.slowest, time.monotonic() - began)
            if ok:
                self.accepted[token].add(kind)
            else:
                self.failures[failure] += 1

    def accepted_count(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.accepted.values())

    def __enter__(self) -> Game:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


def wait_for_progress(game: Game, more: int, timeout: float = 60.0) -> None:
    """Until `more` further requests were accepted (the stack serves again)."""
    target = game.accepted_count() + more
    deadline = time.monotonic() + timeout
    while game.accepted_count() < target:
        assert time.monotonic() < deadline, f"no progress; failures so far {dict(game.failures)}"
        time.sleep(0.1)


def project_key(stack: Stack) -> tuple[str, str]:
    """A project created through the API; waits until analytics knows its key."""
    with httpx.Client(base_url=stack.urls.gateway + "/api", timeout=30.0,
                      trust_env=False) as api:
        r = api.post("/auth/signup", json={"email": f"f-{uuid.uuid4().hex[:8]}@example.com",
                                           "password": "correct horse battery",
                                           "display_name": "Faults"})
        assert r.status_code == 201, r.text
        headers = {"Authorization": f"Bearer {r.json()['data']['token']}"}
        deadline = time.monotonic() + 30
        while True:
            r = api.post("/projects", json={"name": "Fault Game"}, headers=headers)
            if r.status_code == 201 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 201, r.text
        project = r.json()["data"]
        while api.post("/sessions/start", headers={"X-API-Key": project["api_key"]},
                       json={"session_token": f"probe-{uuid.uuid4().hex}"}).status_code != 201:
            assert time.monotonic() < deadline, "analytics never learned the key"
            time.sleep(0.2)
        return project["id"], project["api_key"]


def stored(stack: Stack, project_id: str) -> tuple[dict[str, tuple[bool, bool]], list[Any]]:
    url = "postgresql://" + stack.database_url("analytics").split("://", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT session_token, crashed, ended_at IS NOT NULL FROM game_sessions "
            "WHERE project_id = %s AND session_token LIKE 'f%%'", (project_id,)).fetchall()
        rollup = conn.execute(
            "SELECT d.game_version, d.platform, d.day, d.sessions, d.crashed, g.sessions, "
            "g.crashed FROM session_daily d FULL JOIN (SELECT project_id, day, game_version, "
            "platform, count(*) AS sessions, count(*) FILTER (WHERE crashed) AS crashed "
            "FROM game_sessions GROUP BY 1, 2, 3, 4) g USING (project_id, day, game_version, "
            "platform) WHERE project_id = %s AND (d.sessions IS DISTINCT FROM g.sessions OR "
            "d.crashed IS DISTINCT FROM g.crashed)", (project_id,)).fetchall()
    return {t: (c, e) for t, c, e in rows}, rollup


def test_every_accepted_session_request_counts_once_across_postgres_and_nats_restarts(
        fault_stack: Stack) -> None:
    stack = fault_stack
    project_id, api_key = project_key(stack)
    with Game(stack.urls.gateway, api_key) as game:
        wait_for_progress(game, 200)
        stack.supervisor.stop_programs(["postgres"], timeout=60)
        time.sleep(3)
        stack.supervisor.start("postgres")
        wait_for_progress(game, 200)
        stack.supervisor.stop_programs(["nats"], timeout=60)
        time.sleep(3)
        stack.supervisor.start("nats")
        wait_for_progress(game, 200)
    sessions, rollup_mismatch = stored(stack, project_id)

    accepted, sent = dict(game.accepted), dict(game.sent)
    print(f"accepted {sum(len(v) for v in accepted.values())} requests for {len(accepted)} "
          f"sessions; failures {dict(game.failures)}; slowest answer {game.slowest:.1f} s; "
          f"stored {len(sessions)} sessions")
    assert game.slowest >= 2.0 or game.failures, "the outage did not reach the requests"
    missing = [t for t in accepted if t not in sessions]
    assert not missing, f"accepted but not stored: {missing[:10]}"
    lost_crashes = [t for t, kinds in accepted.items() if "crash" in kinds
                    and not sessions[t][0]]
    assert not lost_crashes, f"accepted crashes not recorded: {lost_crashes[:10]}"
    lost_ends = [t for t, kinds in accepted.items() if kinds & {"end", "crash"}
                 and not sessions[t][1]]
    assert not lost_ends, f"accepted ends not recorded: {lost_ends[:10]}"
    never_sent = [t for t in sessions if t not in sent]
    assert not never_sent
    wrong_crash = [t for t, (crashed, _) in sessions.items() if crashed
                   and "crash" not in sent[t]]
    assert not wrong_crash, f"crashed without a crashed end: {wrong_crash[:10]}"
    # Exactly once: one row per token (the primary key), and the rollups equal the rows.
    assert rollup_mismatch == []
