"""A server's worker exits when the server process is killed (found by
tests/faults/test_faults_under_load.py: after `kill -9` of granian's main process its worker
lived on, re-parented to init, serving next to the restarted server and outside supervision)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil

GRANDCHILD = textwrap.dedent("""
    import time
    from bugnet_common.orphans import exit_with_parent
    assert exit_with_parent(interval=0.1, grace=5.0)
    assert not exit_with_parent()  # once per process
    print("ready", flush=True)
    while True:
        time.sleep(1)
""")

CHILD = textwrap.dedent(f"""
    import subprocess, sys, time
    worker = subprocess.Popen([sys.executable, "-c", {GRANDCHILD!r}], stdout=subprocess.PIPE,
                              text=True)
    assert worker.stdout.readline().strip() == "ready"
    print(worker.pid, flush=True)
    while True:
        time.sleep(1)
""")


def test_worker_exits_when_its_server_is_killed() -> None:
    server = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        worker = psutil.Process(int(server.stdout.readline()))
        time.sleep(0.3)
        assert worker.is_running()  # alive while its server is
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if worker.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.1)
        else:
            worker.kill()
            raise AssertionError("the worker outlived its killed server")
    finally:
        if server.poll() is None:
            server.kill()
