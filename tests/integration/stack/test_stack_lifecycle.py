"""Stopping and restarting: data survives, nothing outlives `down`, busy ports are named."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from pathlib import Path

import nats
import psutil
import psycopg
import pytest

from bugnet_stack import PortInUse, Ports, Stack

INFRA = ("postgres", "nats")


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


async def _stream_messages(url: str, publish: bool) -> int:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        if publish:
            await js.add_stream(name="KEEP", subjects=["keep.>"])
            await js.publish("keep.it", b"data")
        return int((await js.stream_info("KEEP")).state.messages)
    finally:
        await nc.close()


def test_restart_keeps_data_and_down_leaves_no_process_behind(data_dir: Path) -> None:
    ports = Ports.free()
    first = Stack(data_dir=data_dir, ports=ports, components=INFRA)
    first.up(timeout=60)
    with psycopg.connect(libpq(first.database_url("bugs"))) as conn:
        conn.execute("CREATE TABLE kept (note text)")
        conn.execute("INSERT INTO kept VALUES ('still here')")
    assert asyncio.run(_stream_messages(first.urls.nats, publish=True)) == 1
    secrets = dict(first.secrets)
    supervisord = psutil.Process(first.supervisor.pid())
    started = [supervisord, *supervisord.children(recursive=True)]
    assert {"postgres", "nats-server"} <= {p.name() for p in started}
    assert len(started) > 3  # supervisord, the postmaster and its helpers, nats

    assert first.down() is True

    _, alive = psutil.wait_procs(started, timeout=5)
    assert alive == []
    assert not first.supervisor.socket_path.exists()
    assert not first.supervisor.pidfile.exists()
    assert first.down() is False  # a second down is harmless

    with Stack(data_dir=data_dir, ports=ports, components=INFRA) as second:
        assert second.secrets == secrets
        with psycopg.connect(libpq(second.database_url("bugs"))) as conn:
            assert conn.execute("SELECT note FROM kept").fetchall() == [("still here",)]
        assert asyncio.run(_stream_messages(second.urls.nats, publish=False)) == 1


def test_a_busy_port_is_reported_with_the_variable_that_moves_it(data_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        stack = Stack(
            data_dir=data_dir, ports=replace(Ports.free(), nats_monitor=port), components=INFRA
        )
        with pytest.raises(PortInUse) as caught:
            stack.up(timeout=30)
    message = str(caught.value)
    assert f"port {port} (NATS monitoring) is already in use" in message
    assert "BUGNET_NATS_MONITOR_PORT" in message
    assert "--nats-monitor-port" in message
    assert not stack.is_up()
