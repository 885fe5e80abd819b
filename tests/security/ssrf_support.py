"""Helpers of test_ssrf_and_secrets.py: a scripted DNS answer and HTTP servers on chosen
loopback addresses and ports.

`ScriptedDns` replaces `socket.getaddrinfo` for a few test names (every other name goes to the
real resolver): the answers for a name are given in order, the last one repeating — "first the
allowed address, then another one" is DNS rebinding. It counts the lookups of each name, so a
test sees whether a connection looked the name up again after the check.

The HTTP servers are `integration.integrations.receivers.Receiver`s on chosen addresses: two
of them on 127.0.0.2 and 127.0.0.3 with the SAME port are the address a name was checked to and
the address a rebound answer points to.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any


class ScriptedDns:
    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: dict[str, int] = {}
        self.lock = threading.Lock()

    def script(self, name: str, *answers: list[str]) -> None:
        """`name` resolves to answers[0] on its first lookup, answers[1] on the second, …"""
        with self.lock:
            self.answers[name.lower()] = [list(a) for a in answers]
            self.lookups[name.lower()] = 0

    def __call__(self, host: Any, port: Any, family: int = 0, type: int = 0,
                 proto: int = 0, flags: int = 0) -> list[tuple[Any, ...]]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        key = name.lower().rstrip(".")
        with self.lock:
            script = self.answers.get(key)
            if script is None:
                return self.real(host, port, family, type, proto, flags)  # type: ignore[no-any-return]
            n = self.lookups[key]
            self.lookups[key] = n + 1
            addresses = script[min(n, len(script) - 1)]
        port_number = int(port or 0)
        out: list[tuple[Any, ...]] = []
        for address in addresses:
            if ":" in address:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "",
                            (address, port_number, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port_number)))
        if not out:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return out
