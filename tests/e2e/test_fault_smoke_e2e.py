"""The short subset of the fault runs (tests/faults, `make test-faults`) inside `make test`:
`kill -9` of the bugs api while game clients submit bug reports. supervisord brings it back
alone; every submit that got a 2xx is stored exactly once and reached analytics; the others
got a clean 503 envelope, none hung. The shared stack is left healthy (the test waits for it).

Submits come from several loopback addresses at a slow pace, so that no client exceeds the
spec's SDK limit (30/minute) while the api is away and Envoy answers at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from faults.load_driver import (
    Load,
    event_effects,
    kill9,
    make_project,
    orphans_left,
    read_stored,
    render_table,
    tally,
    wait_converged,
    wait_running,
)
from stack_fixtures import _next_address

from bugnet_stack import Stack

pytestmark = pytest.mark.timeout(240)

CLIENTS = 6
PAUSE = 1.5  # seconds between one client's submits: < 30/minute even when answered at once


def test_kill_9_of_bugs_api_under_submits_loses_and_duplicates_nothing(
        stack: Stack, new_client: Callable[..., httpx.Client]) -> None:
    project = make_project(stack, client=new_client())
    loads = [Load(stack, project, kinds=("submit",), pause=PAUSE,
                  local_address=_next_address()) for _ in range(CLIENTS)]
    for load in loads:
        load.__enter__()
    try:
        loads[0].wait_accepted(2, timeout=60)
        t0 = time.monotonic()
        pid, children = kill9(stack, "bugs-api")
        recovered, how = wait_running(stack, "bugs-api", old_pid=pid, timeout=60)
        assert recovered, stack.supervisor.info("bugs-api")
        # Until the api serves submits again (a 2xx sent after the fault, none failing since).
        deadline = t0 + 90
        while time.monotonic() < deadline:
            records = [r for load in loads for r in load.snapshot() if r.sent >= t0]
            failed = [r.done for r in records if not r.ok]
            if failed and any(r.ok and r.done > max(failed) + 1 for r in records):
                break
            if not failed and time.monotonic() > t0 + 5 and any(r.ok for r in records):
                break
            time.sleep(0.2)
        orphans = orphans_left(children)
    finally:
        for load in loads:
            load.__exit__()
    records = [r for load in loads for r in load.snapshot()]
    stored = wait_converged(stack, project, None, timeout=90)
    row = tally("kill -9 bugs-api (smoke)", records, stored, fault_at=t0, how=how)
    row.events_lost, row.events_duplicated = event_effects(stored, webhook=False)
    row.orphans = len(orphans)
    print("\n" + render_table([row]), dict(row.failures), row.samples)

    assert row.accepted > 0 and row.lost == 0 and row.duplicated == 0, row.samples
    assert row.hangs == 0 and row.failed_unclean == 0, (dict(row.failures), row.samples)
    assert row.events_lost == 0 and row.events_duplicated == 0
    assert row.orphans == 0, "the killed api's worker lives on"
    assert row.recovery_s is not None, dict(row.failures)
    # Stored rows never come from nowhere: every fl- bug of the project was sent by a client.
    assert set(read_stored(stack, project).bugs) <= {r.marker for r in records}
