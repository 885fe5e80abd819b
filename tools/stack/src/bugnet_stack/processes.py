"""Child processes a command or a test started itself (not the supervised ones)."""

from __future__ import annotations

import subprocess
from typing import Any


def stop(proc: subprocess.Popen[Any], *, timeout: float = 5.0) -> int:
    """Stops `proc`: SIGTERM, then SIGKILL if it has not exited after `timeout` seconds.
    Returns its exit status (at once if it had already exited)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()
