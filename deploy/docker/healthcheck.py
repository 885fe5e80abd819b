"""Container healthchecks of Bugnet's images (the slim base has no curl); exit 0 when healthy.

    bugnet-healthcheck http URL          the URL answers 2xx within 3 s
    bugnet-healthcheck tcp HOST PORT     something accepts connections there
    bugnet-healthcheck process NAME      a process of this container runs `python -m NAME`
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request

TIMEOUT = 3.0


def http(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return 200 <= int(response.status) < 300
    except (OSError, urllib.error.URLError, ValueError):
        return False


def tcp(host: str, port: str) -> bool:
    try:
        with socket.create_connection((host, int(port)), timeout=TIMEOUT):
            return True
    except (OSError, ValueError):
        return False


def process(module: str) -> bool:
    """A worker has no port: healthy while its `python -m <module>` process is alive."""
    own = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == own:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        for i, arg in enumerate(argv[:-1]):
            if arg == b"-m" and argv[i + 1].decode(errors="replace") == module:
                return True
    return False


def main(argv: list[str]) -> int:
    checks = {"http": (http, 1), "tcp": (tcp, 2), "process": (process, 1)}
    if not argv or argv[0] not in checks or len(argv) - 1 != checks[argv[0]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    check, _ = checks[argv[0]]
    healthy: bool = check(*argv[1:])  # type: ignore[operator]
    if not healthy:
        print(f"unhealthy: {' '.join(argv)}", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
