"""A local HTTP server standing in for an external service (GitHub, GitLab, Steam) in tests.

Subclasses implement `handle` with the service's real request and response shapes. Every
request is recorded (method, raw path, query, lower-case headers, body); `script()` makes the
next requests fail in a given way (a status with a body, or bytes that are not JSON) before
the normal behaviour resumes.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # raw, still percent-encoded
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json; charset=utf-8"

    @classmethod
    def of(cls, status: int, doc: Any, **headers: str) -> Answer:
        return cls(status, json.dumps(doc).encode(), tuple(headers.items()))


class FakeServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[Request] = []
        self.delay = 0.0  # seconds before every answer
        self._scripted: list[Answer | None] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_port}"

    def handle(self, request: Request) -> Answer:
        raise NotImplementedError

    def script(self, *answers: Answer | None) -> None:
        """The next requests get these answers, in order, instead of the normal ones (None:
        the normal answer for that request)."""
        with self._lock:
            self._scripted.extend(answers)

    def _answer(self, request: Request) -> Answer:
        with self._lock:
            self.requests.append(request)
            scripted = self._scripted.pop(0) if self._scripted else None
        return scripted if scripted is not None else self.handle(request)

    def start(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                request = Request(self.command, parts.path, query,
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                answer = fake._answer(request)
                if fake.delay:
                    time.sleep(fake.delay)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
