"""A PostgreSQL database for the benchmarks that need only a database, not a whole stack."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def database(url: str | None, *, name: str) -> Iterator[str]:
    """`url` when given; else a fresh database `name` on a server started for the run (the
    tests' real-server helper: testcontainers or the PyPI wheel), stopped afterwards."""
    if url:
        yield url
        return
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from servers import postgres_server

    with postgres_server() as pg:
        yield pg.create_database(name)
