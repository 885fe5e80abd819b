"""A server worker process must not outlive the server process that started it.

gunicorn's workers notice their master is gone (their parent pid changes) and exit. granian's
do not: after a `kill -9` of granian's main process its worker is re-parented to init and keeps
serving on the shared port (SO_REUSEPORT) next to the new server supervisord starts — a
process nothing supervises, restarts with new code or stops (`make down` leaves it behind).
`exit_with_parent()` gives a worker that behaviour: a daemon thread watches the parent pid and,
when it changes, stops the process (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

_started = False
_lock = threading.Lock()


def exit_with_parent(*, interval: float = 0.5, grace: float = 10.0) -> bool:
    """Starts the watch once per process; returns whether it was started by this call."""
    global _started
    with _lock:
        if _started:
            return False
        _started = True
    parent = os.getppid()
    thread = threading.Thread(target=_watch, args=(parent, interval, grace),
                              name="exit-with-parent", daemon=True)
    thread.start()
    return True


def _watch(parent: int, interval: float, grace: float) -> None:
    while os.getppid() == parent:
        time.sleep(interval)
    log.warning("server process %s is gone; worker %s exits", parent, os.getpid())
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)
    os.kill(os.getpid(), signal.SIGKILL)


def under_granian() -> bool:
    """True in a granian worker process (granian imported the app factory)."""
    return "granian" in sys.modules
