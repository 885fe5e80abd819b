"""A signed-out token is refused by another service within one second.

Real path: auth api (over HTTP, serving the JWKS) → outbox → auth worker relay → JetStream →
revocation mirror → KV bucket → the bugs api's watcher → the bugs verifier.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from flask import Flask
from werkzeug.serving import make_server

from auth.app import create_app as create_auth
from auth.models import BUS
from auth.settings import AuthSettings
from auth.worker import mirror_revocations
from bugnet_common.bus.worker import Worker
from bugnet_common.db import Database, migrate
from bugnet_common.errors import Unauthorized
from bugnet_common.runtime import runtime_of
from bugnet_common.testing import worker_thread
from bugs.app import create_app as create_bugs
from bugs.migrate import MIGRATIONS as BUGS_MIGRATIONS
from bugs.settings import BugsSettings
from servers import NatsInfo, PostgresInfo


@pytest.fixture()
def bucket() -> str:
    return f"revoked_{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def auth_http(auth_settings: AuthSettings, auth_db: Database, bucket: str) -> Iterator[str]:
    app = create_auth(auth_settings.model_copy(update={"revocation_bucket": bucket}))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    runtime_of(app).close()


@pytest.fixture()
def bugs_app(pg: PostgresInfo, nats: NatsInfo, auth_http: str, bucket: str) -> Iterator[Flask]:
    url = pg.create_database("bugs_revocation_it")
    migrate(script_location=BUGS_MIGRATIONS, url=url)
    settings = BugsSettings(database_url=url, nats_url=nats.url, revocation_bucket=bucket,  # type: ignore[arg-type]
                            jwks_url=f"{auth_http}/api/auth/jwks.json")
    app = create_bugs(settings)
    yield app
    runtime_of(app).close()


def test_logout_is_refused_by_another_service_within_one_second(
        auth_http: str, bugs_app: Flask, auth_settings: AuthSettings, auth_db: Database,
        nats: NatsInfo, bucket: str) -> None:
    async def mirror(worker: Worker, stop) -> None:  # type: ignore[no-untyped-def]
        await mirror_revocations(worker, stop, bucket=bucket)

    auth_worker = Worker(service="auth", nats_url=nats.url, db=auth_db, tables=BUS,
                         tasks=[mirror])
    bugs_verifier = runtime_of(bugs_app).verifier
    with worker_thread(auth_worker), httpx.Client(base_url=auth_http) as http:
        signed = http.post("/api/auth/signup", json={"email": "rev@example.com",
                                                      "password": "correct horse battery",
                                                      "display_name": "Rev"}).json()["data"]
        token = signed["token"]
        assert bugs_verifier.verify(token).user_id == signed["user"]["id"]
        out = http.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"})
        assert out.status_code == 200
        logged_out_at = time.monotonic()
        refused_after = None
        while time.monotonic() - logged_out_at < 3:
            try:
                bugs_verifier.verify(token)
            except Unauthorized:
                refused_after = time.monotonic() - logged_out_at
                break
            time.sleep(0.01)
    assert refused_after is not None, "the bugs service never refused the revoked token"
    print(f"revocation reached the bugs service after {refused_after * 1000:.0f} ms")
    assert refused_after < 1.0
