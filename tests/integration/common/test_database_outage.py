"""A request whose database is away gets a clean 503 envelope, never a bare 500
(found by tests/faults/test_faults_under_load.py: during a PostgreSQL restart the bugs and
analytics apis answered 500 "Internal server error", and some requests an empty-bodied 500 from
the WSGI server because closing the request's session raised in the teardown)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from flask import Blueprint, Flask, current_app
from flask.typing import ResponseReturnValue

from bugnet_common.db import Database, request_session
from bugnet_common.settings import ServiceSettings
from bugnet_common.web import create_service_app, ok
from servers import PostgresInfo, free_port


@pytest.fixture(scope="module")
def url(pg: PostgresInfo) -> str:
    return pg.create_database("outage_it")


def make_app(db: Database, superuser_dsn: str) -> Flask:
    bp = Blueprint("outage", __name__)

    @bp.get("/read")
    def read() -> ResponseReturnValue:
        session = request_session(current_app)
        return ok({"one": session.execute(sa.text("SELECT 1")).scalar_one()})

    @bp.get("/dropped")
    def dropped() -> ResponseReturnValue:
        """The server drops the request's connection inside its open transaction (what a
        PostgreSQL restart does); the handler never touches the database again."""
        session = request_session(current_app)
        pid = session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with psycopg.connect(superuser_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return ok({"pid": pid})

    @bp.get("/dropped-then-read")
    def dropped_then_read() -> ResponseReturnValue:
        session = request_session(current_app)
        pid = session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with psycopg.connect(superuser_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return ok({"one": session.execute(sa.text("SELECT 1")).scalar_one()})

    @bp.get("/bug")
    def bug() -> ResponseReturnValue:
        session = request_session(current_app)
        session.execute(sa.text("SELECT * FROM no_such_table"))
        return ok({})

    app = create_service_app("outage", ServiceSettings(), blueprints=[bp])
    db.init_app(app)
    return app


@pytest.fixture()
def live(url: str, pg: PostgresInfo) -> Iterator[Flask]:
    db = Database(url)
    yield make_app(db, pg.superuser_dsn)
    db.engine.dispose()


def assert_unavailable(resp: object) -> None:
    body = resp.get_json()  # type: ignore[attr-defined]
    assert resp.status_code == 503, body  # type: ignore[attr-defined]
    assert body["ok"] is False and body["code"] == "service_unavailable"
    assert "SELECT" not in body["error"] and "psycopg" not in body["error"]


def test_unreachable_database_is_503_envelope() -> None:
    db = Database(f"postgresql+psycopg://nobody:x@127.0.0.1:{free_port()}/none")
    app = make_app(db, "")
    assert_unavailable(app.test_client().get("/read"))


def test_connection_dropped_mid_request_is_503_and_the_next_request_works(
        live: Flask) -> None:
    client = live.test_client()
    assert_unavailable(client.get("/dropped-then-read"))
    resp = client.get("/read")
    assert resp.status_code == 200 and resp.get_json()["data"] == {"one": 1}


def test_closing_a_session_the_server_dropped_does_not_break_the_response(live: Flask) -> None:
    client = live.test_client()
    resp = client.get("/dropped")  # the teardown's ROLLBACK meets a dead connection
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert client.get("/read").status_code == 200


def test_a_programming_error_stays_a_500(live: Flask) -> None:
    resp = live.test_client().get("/bug")
    assert resp.status_code == 500
    assert resp.get_json() == {"ok": False, "error": "Internal server error",
                               "code": "internal_error"}
