"""A local HTTP server standing in for webhook receivers and Discord in tests.

It records every request (method, path, headers, body, arrival time) and answers from a
script: `statuses` are returned in turn (the last one repeats), after `delay` seconds, with
`body` (JSON) and `headers`. With `fail_each=n`, the first n requests of every delivery
(X-Bugnet-Delivery) are answered 500 and the later ones from `statuses`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=lambda: [200])
    delay: float = 0.0
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port; two receivers may share one on different addresses
    fail_each: int = 0
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._served = 0
        self._per_key: dict[str, int] = {}

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, delay = receiver._next(self.headers.get("X-Bugnet-Delivery") or "")
                if delay:
                    time.sleep(delay)
                receiver._record(Received(self.command, self.path,
                                          {k.lower(): v for k, v in self.headers.items()},
                                          body, time.monotonic()))
                out = b"" if receiver.body is None else json.dumps(receiver.body).encode()
                self.send_response(status)
                for name, value in receiver.headers.items():
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

    def _next(self, key: str) -> tuple[int, float]:
        with self._lock:
            if self.fail_each:
                seen = self._per_key[key] = self._per_key.get(key, 0) + 1
                if seen <= self.fail_each:
                    return 500, self.delay
            i = min(self._served, len(self.statuses) - 1)
            self._served += 1
            return self.statuses[i], self.delay

    def _record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)
            self._lock.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The first `count` requests, waiting up to `timeout` seconds for them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} requests, got {len(self.requests)}")
                self._lock.wait(left)
            return list(self.requests[:count])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
