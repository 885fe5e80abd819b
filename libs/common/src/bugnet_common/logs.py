"""JSON logs on stdout, each line carrying the service name and the gateway's request id."""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pythonjsonlogger.json import JsonFormatter

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def bind_request(request_id: str | None) -> None:
    _request_id.set(request_id)


def current_request_id() -> str | None:
    """The request id bound in this context (a request, or the event a handler applies)."""
    return _request_id.get()


@contextmanager
def request_bound(request_id: str | None) -> Iterator[None]:
    """Bind `request_id` for the block, then restore what was bound before (a worker binds
    each event's correlation id while its handler runs; None unbinds for the block)."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        rid = _request_id.get()
        if rid is not None:
            record.request_id = rid
        return True


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is now, not the object it was at configuration time
    (test runners and process managers swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(service: str, level: str = "INFO") -> None:
    """Idempotent: a second app in the same process (tests) does not double the handlers."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in root.handlers:
        if getattr(handler, "_bugnet", False):
            for f in handler.filters:
                if isinstance(f, _ContextFilter):
                    f.service = service
            return
    handler = _StdoutHandler()
    handler._bugnet = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        timestamp=False,
    ))
    handler.addFilter(_ContextFilter(service))
    root.addHandler(handler)
