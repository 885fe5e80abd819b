"""Helpers of test_ssrf_and_secrets.py: a scripted DNS answer and HTTP servers on chosen
loopback addresses and ports.

`ScriptedDns` replaces `socket.getaddrinfo` for a few test names (every other name goes to the
real resolver): the answers for a name are given in order, the last one repeating — "first the
allowed address, then another one" is DNS rebinding. It counts the lookups of each name, so a
test sees whether a connection looked the name up again after the check.

`Listener` is an HTTP server on a given address and port that records requests and answers with
a fixed status, headers and JSON body: two of them on 127.0.0.2 and 127.0.0.3 with the SAME port
are the address a name was checked to and the address a rebound answer points to.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Listener:
    host: str
    port: int = 0
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    requests: list[Seen] = field(default_factory=list)

    def start(self) -> Listener:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                listener.requests.append(Seen(self.command, self.path,
                                              {k.lower(): v for k, v in self.headers.items()},
                                              body))
                out = b"" if listener.body is None else json.dumps(listener.body).encode()
                self.send_response(listener.status)
                for name, value in listener.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_POST = do_GET = do_PUT = _handle

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_port
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
