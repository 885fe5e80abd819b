"""Events written while NATS is down are published once it is back."""

from __future__ import annotations

import asyncio
import time

import httpx
import nats as nats_client
from e2e.support import signup

from bugnet_common.bus import subjects
from bugnet_common.bus.events import Event
from bugnet_stack import Stack


async def registered_user_ids(url: str) -> set[str]:
    nc = await nats_client.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe(subjects.USER_REGISTERED, stream="AUTH", ordered_consumer=True)
        found: set[str] = set()
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except Exception:
                break
            found.add(Event.from_json(msg.data).data["user_id"])
        await sub.unsubscribe()
        return found
    finally:
        await nc.close()


def test_signups_during_a_nats_outage_are_published_after_it_returns(
        stack: Stack, api: httpx.Client) -> None:
    stack.supervisor.stop_programs(["nats"], timeout=20)
    try:
        users = [signup(api)[1]["id"] for _ in range(3)]  # accepted while the bus is down
    finally:
        stack.supervisor.start("nats")
    wanted = set(users)
    deadline = time.monotonic() + 30
    seen: set[str] = set()
    while time.monotonic() < deadline:
        try:
            seen = asyncio.run(registered_user_ids(stack.urls.nats))
        except Exception:
            time.sleep(0.5)
            continue
        if wanted <= seen:
            break
        time.sleep(0.5)
    assert wanted <= seen, f"missing after NATS came back: {wanted - seen}"
