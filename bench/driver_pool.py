"""What one httpx request costs a load driver's CPU, by pool size: why the held-load test
(tests/faults/test_load_held.py) drives each service through its own gated pool of 16.

httpx's pool (httpcore `_assign_requests_to_connections`) does O(connections²) work for every
request it hands out, and more for each request queued inside it. A driver that keeps more
requests in flight than it has connections, as an open-loop driver behind a slow second does,
pays that on every request. This measures it against a local HTTP/1.1 server in a child process
(it answers after `--delay-ms`, so every connection stays busy), with `--in-flight` requests
outstanding, for each pool size:

| column | what |
|---|---|
| `queued in the pool` | every request goes straight to httpx, which queues what its connections cannot take |
| `gated` | an asyncio.Semaphore of the pool's size in front: httpx never holds a queued request |
| CPU ms/request | the driver process's user+system CPU per answered request (the server is not counted) |
| req/s | answers per second (bounded by connections / delay when the driver keeps up) |

The last column is each row's CPU per request over the gated pool of 16's, measured in the same
run: compare that ratio across machines, not the absolute figures.

`python -m bench.driver_pool [--requests N] [--in-flight N] [--delay-ms MS]`; other arguments
(those `make bench` passes to every benchmark) are ignored.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

POOL_SIZES = (64, 32, 16, 8)
BASELINE = (16, "gated")

SERVER = """
import asyncio, sys
delay = float(sys.argv[1])

async def answer(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\\r\\n\\r\\n")
            await asyncio.sleep(delay)
            writer.write(b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()

async def main():
    server = await asyncio.start_server(answer, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


@contextmanager
def server(delay_s: float) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(delay_s)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{proc.stdout.readline().strip()}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def drive(url: str, connections: int, gated: bool, requests: int,
                in_flight: int) -> tuple[float, float]:
    """(CPU ms per request, requests per second) of `requests` with `in_flight` outstanding."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    gate = asyncio.Semaphore(connections)
    outstanding = asyncio.Semaphore(in_flight)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60,
                                 trust_env=False) as client:
        async def one() -> None:
            async with outstanding:
                if gated:
                    async with gate:
                        (await client.get("/")).raise_for_status()
                else:
                    (await client.get("/")).raise_for_status()

        await asyncio.gather(*(one() for _ in range(connections)))  # connections opened
        cpu, started = cpu_s(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(requests)))
        elapsed, used = time.perf_counter() - started, cpu_s() - cpu
    return used / requests * 1e3, requests / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.driver_pool", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=256)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args, _unknown = parser.parse_known_args(argv)
    results: dict[tuple[int, str], tuple[float, float]] = {}
    with server(args.delay_ms / 1000) as url:
        for connections in POOL_SIZES:
            for mode in ("queued in the pool", "gated"):
                print(f"measuring {connections} connections, {mode}...", file=sys.stderr,
                      flush=True)
                results[(connections, mode)] = asyncio.run(drive(
                    url, connections, mode == "gated", args.requests, args.in_flight))
    base = results[BASELINE][0]
    print(f"{args.requests} requests, {args.in_flight} in flight, server answers after "
          f"{args.delay_ms:.0f} ms")
    print(f"{'connections':>11} {'mode':<20} {'CPU ms/request':>15} {'req/s':>8} "
          f"{'CPU vs gated 16':>16}")
    for (connections, mode), (cpu_ms, rate) in results.items():
        print(f"{connections:>11} {mode:<20} {cpu_ms:>15.2f} {rate:>8.0f} {cpu_ms / base:>15.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
