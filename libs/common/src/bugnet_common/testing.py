"""Helpers for tests that run real workers and databases; imported by tests only."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from .bus.nats_io import run_loop_to_end
from .bus.worker import Worker


@contextmanager
def worker_thread(worker: Worker, *, startup_timeout: float = 10.0) -> Iterator[Worker]:
    """Run `worker` on its own event loop in a thread until the block exits."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started = threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        started.set()
        await worker.run(stop)

    def target() -> None:
        asyncio.set_event_loop(loop)
        try:
            run_loop_to_end(loop, main())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name=f"worker-{worker.service}", daemon=True)
    thread.start()
    if not (started.wait(startup_timeout) and worker.ready.wait(startup_timeout)):
        loop.call_soon_threadsafe(stop.set)
        raise RuntimeError(f"worker {worker.service} did not become ready")
    try:
        yield worker
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        if failure and not isinstance(failure[0], asyncio.CancelledError):
            raise failure[0]


def truncate_all(engine: sa.Engine, metadata: sa.MetaData) -> None:
    """Empty every table of `metadata` (a clean database for the next test)."""
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    if names:
        with engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


class TokenIssuer:
    """Signs bearer tokens the way the auth service does and serves its JWKS over real HTTP,
    so a service under test verifies them exactly as in production."""

    def __init__(self, *, issuer: str = "bugnet", audience: str = "bugnet") -> None:
        from joserfc.jwk import ECKey

        self.issuer = issuer
        self.audience = audience
        self.key = ECKey.generate_key("P-256", parameters={"kid": uuid.uuid4().hex}, private=True)
        self._server: Any = None
        self.jwks_url = ""

    def jwks(self) -> dict[str, Any]:
        public = self.key.as_dict(private=False)
        public.update({"alg": "ES256", "use": "sig"})
        return {"keys": [public]}

    def start(self) -> str:
        """Serve the JWKS; returns its URL."""
        from werkzeug.serving import WSGIRequestHandler, make_server
        from werkzeug.wrappers import Response

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        doc = json.dumps(self.jwks())

        def app(environ: Any, start_response: Any) -> Any:
            return Response(doc, mimetype="application/json")(environ, start_response)

        self._server = make_server("127.0.0.1", 0, app, threaded=True,
                                   request_handler=QuietHandler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.jwks_url = f"http://127.0.0.1:{self._server.server_port}/api/auth/jwks.json"
        return self.jwks_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    def token(self, user_id: str, email: str, *, session_id: str | None = None,
              ttl: int = 3600) -> str:
        from joserfc import jwt

        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.audience, "sub": user_id, "email": email,
                  "sid": session_id or str(uuid.uuid4()), "iat": now, "exp": now + ttl}
        return jwt.encode({"alg": "ES256", "kid": self.key.kid, "typ": "JWT"}, claims, self.key,
                          algorithms=["ES256"])
