"""The per-account sign-in throttle (auth.throttle) against a real PostgreSQL and NATS.

Two api instances share the database, as two auth processes do: failures counted by one are
counted by the other. A small limit (3) keeps the tests quick; the spec's defaults (10 in
15 minutes) are exercised through the gateway in tests/security/test_auth_abuse.py.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from integration.auth.test_auth_api import PASSWORD, signup

from auth.app import create_app
from auth.models import BUS, LoginFailure
from auth.settings import AuthSettings
from auth.throttle import LOCKED, LoginThrottle, email_hash
from auth.worker import prune_login_failures
from bugnet_common.bus.events import utcnow
from bugnet_common.bus.worker import Worker
from bugnet_common.db import Database
from bugnet_common.runtime import runtime_of
from bugnet_common.testing import worker_thread
from servers import NatsInfo

MAX = 3
WINDOW = 900
TABLE = LoginFailure.__table__  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def throttled_settings(auth_settings: AuthSettings) -> AuthSettings:
    return auth_settings.model_copy(update={"login_failures_max": MAX,
                                            "login_failures_window_seconds": WINDOW})


@pytest.fixture(scope="module")
def apps(throttled_settings: AuthSettings) -> Iterator[tuple[Flask, Flask]]:
    first, second = create_app(throttled_settings), create_app(throttled_settings)
    yield first, second
    for app in (first, second):
        runtime_of(app).close()


@pytest.fixture()
def one(apps: tuple[Flask, Flask], auth_db: Database) -> FlaskClient:
    return apps[0].test_client()


@pytest.fixture()
def other(apps: tuple[Flask, Flask], auth_db: Database) -> FlaskClient:
    return apps[1].test_client()


def login(client: FlaskClient, email: str, password: str) -> Any:
    return client.post("/api/auth/login", json={"email": email, "password": password})


def rows(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(TABLE))]


def assert_locked(resp: Any) -> int:
    assert resp.status_code == 429, resp.json
    assert resp.json == {"ok": False, "error": LOCKED, "code": "rate_limited"}
    wait = int(resp.headers["Retry-After"])
    assert 1 <= wait <= WINDOW
    return wait


def test_failures_from_every_process_lock_the_account_even_for_the_right_password(
        one: FlaskClient, other: FlaskClient, auth_db: Database) -> None:
    signup(one)
    for i in range(MAX):  # alternate processes: the count lives in the database
        client = one if i % 2 == 0 else other
        resp = login(client, "ada@example.com", f"wrong-guess-{i}")
        assert resp.status_code == 401 and resp.json["error"] == "Invalid email or password"
    assert_locked(login(other, "ada@example.com", "wrong-guess-again"))
    # Locked means locked: the right password too, under any spelling of the address.
    assert_locked(login(one, "ada@example.com", PASSWORD))
    assert_locked(login(other, "  ADA@Example.COM ", PASSWORD))
    # Another account is not affected.
    signup(one, email="bob@example.com", name="Bob")
    assert login(other, "bob@example.com", PASSWORD).status_code == 200


def test_unknown_emails_are_locked_alike(one: FlaskClient, other: FlaskClient) -> None:
    signup(one)
    known = [login(one, "ada@example.com", f"wrong-{i}") for i in range(MAX + 1)]
    unknown = [login(other, "nobody@example.com", f"wrong-{i}") for i in range(MAX + 1)]
    for a, b in zip(known, unknown, strict=True):
        assert (a.status_code, a.json) == (b.status_code, b.json)
    assert [r.status_code for r in known] == [401] * MAX + [429]
    assert abs(int(known[-1].headers["Retry-After"])
               - int(unknown[-1].headers["Retry-After"])) <= 1


def test_a_successful_login_resets_the_count(one: FlaskClient, auth_db: Database) -> None:
    signup(one)
    for round_ in range(2):  # 2 x (MAX - 1) failures would lock without the reset
        for i in range(MAX - 1):
            assert login(one, "ada@example.com", f"wrong-{round_}-{i}").status_code == 401
        assert login(one, "ada@example.com", PASSWORD).status_code == 200
        assert rows(auth_db) == []


def test_the_lock_ends_with_its_window(one: FlaskClient, auth_db: Database) -> None:
    signup(one)
    for i in range(MAX + 2):
        login(one, "ada@example.com", f"wrong-{i}")
    assert_locked(login(one, "ada@example.com", PASSWORD))
    with auth_db.engine.begin() as conn:  # the window started WINDOW + 1 seconds ago
        conn.execute(sa.update(TABLE).values(
            window_started_at=utcnow() - timedelta(seconds=WINDOW + 1)))
    assert login(one, "ada@example.com", PASSWORD).status_code == 200
    # A failure after the window starts a fresh count of one.
    assert login(one, "ada@example.com", "wrong-once-more").status_code == 401
    (row,) = rows(auth_db)
    assert row["failures"] == 1


def test_concurrent_guesses_cannot_slip_past_the_limit(
        apps: tuple[Flask, Flask], auth_db: Database) -> None:
    signup(apps[0].test_client())

    def guess(i: int) -> int:
        client = apps[i % 2].test_client()
        return int(login(client, "ada@example.com", f"parallel-{i}").status_code)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(guess, range(16)))
    assert sorted(statuses) == [401] * MAX + [429] * (16 - MAX)


def test_only_a_hash_of_the_email_is_stored(one: FlaskClient, auth_db: Database) -> None:
    login(one, " Nobody@Example.com", "wrong-password")
    (row,) = rows(auth_db)
    assert row["email_hash"] == hashlib.sha256(b"nobody@example.com").hexdigest()
    assert row["email_hash"] == email_hash("NOBODY@example.com ")
    assert "nobody" not in repr(row).lower()


def test_locked_attempts_do_the_same_password_work(one: FlaskClient) -> None:
    """A locked answer must not come back measurably faster than a checked one: the argon2
    verification runs either way (medians of a few attempts, generous bound)."""
    signup(one)

    def timed(password: str) -> float:
        started = time.perf_counter()
        login(one, "ada@example.com", password)
        return time.perf_counter() - started

    checked = sorted(timed(f"wrong-{i}") for i in range(MAX))[MAX // 2]
    locked = sorted(timed(f"locked-{i}") for i in range(MAX))[MAX // 2]
    assert locked > checked * 0.5, (checked, locked)


def _age(db: Database, email: str, seconds: int) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.update(TABLE).where(TABLE.c.email_hash == email_hash(email))
                     .values(window_started_at=utcnow() - timedelta(seconds=seconds)))


def test_the_worker_prunes_finished_windows(
        one: FlaskClient, auth_db: Database, nats: NatsInfo) -> None:
    for address in ("old@example.com", "fresh@example.com"):
        login(one, address, "wrong-password")
    _age(auth_db, "old@example.com", WINDOW + 5)
    throttle = LoginThrottle(max_failures=MAX, window_seconds=WINDOW)

    async def prune(worker: Worker, stop: Any) -> None:
        await prune_login_failures(worker, stop, throttle=throttle, every=0.1)

    worker = Worker(service="auth", nats_url=nats.url, db=auth_db, tables=BUS, tasks=[prune],
                    relay=False)
    with worker_thread(worker):
        deadline = time.monotonic() + 5
        while len(rows(auth_db)) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [r["email_hash"] for r in rows(auth_db)] == [email_hash("fresh@example.com")]
