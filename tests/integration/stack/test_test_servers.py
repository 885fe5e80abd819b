"""tests/servers.py: real servers for integration tests (from the wheels on this machine)."""

from __future__ import annotations

import asyncio

import httpx
import nats
import pytest
import sqlalchemy

from servers import docker_available, nats_server, postgres_server


def test_postgres_server_hands_out_fresh_databases() -> None:
    with postgres_server() as pg:
        url = pg.create_database("servers_probe")
        assert url.startswith("postgresql+psycopg://") and url.endswith(f":{pg.port}/servers_probe")
        engine = sqlalchemy.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("CREATE TABLE leftover (id int)"))
        engine.dispose()

        engine = sqlalchemy.create_engine(pg.create_database("servers_probe"))
        with engine.connect() as conn:
            tables = conn.execute(
                sqlalchemy.text("SELECT count(*) FROM pg_tables WHERE tablename = 'leftover'")
            )
            assert tables.scalar() == 0
        engine.dispose()
        with pytest.raises(ValueError):
            pg.create_database("Robert'); DROP")


def test_nats_server_has_jetstream() -> None:
    async def account_streams(url: str) -> int:
        nc = await nats.connect(url)
        try:
            return int((await nc.jetstream().account_info()).streams)
        finally:
            await nc.close()

    with nats_server() as info:
        assert httpx.get(f"{info.monitor_url}/healthz").status_code == 200
        assert asyncio.run(account_streams(info.url)) == 0


def test_docker_detection_answers_quickly() -> None:
    docker_available.cache_clear()
    assert docker_available() in (True, False)
