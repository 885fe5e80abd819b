"""PostgreSQL and NATS as the launcher provisions them: one role and database per service."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator

import httpx
import nats
import psycopg
import pytest

from bugnet_stack import SERVICES, Ports, Stack
from servers import scratch_dir


@pytest.fixture(scope="module")
def infra() -> Iterator[Stack]:
    with scratch_dir("bugnet-stack-infra-") as data_dir:
        stack = Stack(
            data_dir=data_dir, ports=Ports.free(), components=("postgres", "nats"), durable=False
        )
        with stack:
            yield stack


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_each_service_owns_a_database_named_after_it(infra: Stack) -> None:
    with psycopg.connect(infra.urls.postgres_dsn) as conn:
        owners = conn.execute(
            "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname = ANY(%s)",
            (list(SERVICES),),
        ).fetchall()
        roles = conn.execute(
            "SELECT rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles"
            " WHERE rolname = ANY(%s)",
            (list(SERVICES),),
        ).fetchall()
    assert sorted(owners) == sorted((s, s) for s in SERVICES)
    assert sorted(roles) == sorted((s, True, False, False, False) for s in SERVICES)


def test_each_service_url_logs_in_as_its_role_to_its_database(infra: Stack) -> None:
    port = infra.ports.postgres
    for service in SERVICES:
        url = infra.urls.database_urls[service]
        assert url.startswith(f"postgresql+psycopg://{service}:")
        assert url.endswith(f"@127.0.0.1:{port}/{service}")
        with psycopg.connect(libpq(url)) as conn:
            assert conn.execute("SELECT current_user, current_database()").fetchone() == (
                service,
                service,
            )
            conn.execute("CREATE TABLE IF NOT EXISTS owned_here (id int)")


def test_a_service_role_cannot_connect_to_another_database(infra: Stack) -> None:
    for service in SERVICES:
        password = infra.secrets[f"{service.upper()}_DB_PASSWORD"]
        for other in (*SERVICES, "postgres", "template1"):
            if other == service:
                continue
            with pytest.raises(psycopg.OperationalError, match="permission denied"):
                psycopg.connect(
                    host="127.0.0.1",
                    port=infra.ports.postgres,
                    user=service,
                    password=password,
                    dbname=other,
                ).close()


def test_a_wrong_password_is_refused(infra: Stack) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host="127.0.0.1", port=infra.ports.postgres, user="auth", password="nope", dbname="auth"
        )


def test_nats_runs_with_jetstream(infra: Stack) -> None:
    async def publish_to_a_stream() -> int:
        nc = await nats.connect(infra.urls.nats)
        try:
            js = nc.jetstream()
            await js.add_stream(name="INFRA", subjects=["infra.>"])
            await js.publish("infra.hello", b"hi")
            info = await js.stream_info("INFRA")
            return int(info.state.messages)
        finally:
            await nc.close()

    assert asyncio.run(publish_to_a_stream()) == 1
    jsz = httpx.get(f"{infra.urls.nats_monitor}/jsz").json()
    assert jsz["config"]["store_dir"].startswith(str(infra.data_dir / "nats"))


def test_secrets_are_private_and_reused(infra: Stack) -> None:
    path = infra.data_dir / "secrets.env"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = Stack(data_dir=infra.data_dir, ports=infra.ports, components=("postgres", "nats"))
    assert again.secrets == infra.secrets
    assert set(infra.secrets) == {
        "POSTGRES_PASSWORD",
        *(f"{s.upper()}_DB_PASSWORD" for s in SERVICES),
    }


def test_up_while_up_changes_nothing(infra: Stack) -> None:
    before = {s.name: s.pid for s in infra.status()}
    infra.up(timeout=30)
    assert {s.name: s.pid for s in infra.status()} == before
    assert all(s.healthy for s in infra.status())
