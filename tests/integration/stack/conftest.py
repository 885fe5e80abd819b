from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
for path in (TESTS_DIR, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import standins  # noqa: E402

from servers import scratch_dir  # noqa: E402


@pytest.fixture(scope="session")
def standin_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stand-in service packages, bugnet_common.gunicorn_conf and bugnet_gateway.render."""
    return standins.write(tmp_path_factory.mktemp("standins"))


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with scratch_dir("bugnet-stack-test-") as path:
        yield path
