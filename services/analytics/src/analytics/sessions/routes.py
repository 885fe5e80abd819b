"""HTTP routes of the sessions area: game clients' session starts and ends (spec §6, §8).

These are the hottest endpoints of the system: `FAST_ROUTES` lets the WSGI fast path
(`fastpath.py`) answer them without Flask's request machinery; the Flask routes below are the
same handlers, used when the fast path is switched off (settings.sdk_fast_path).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import web

from ..batching import Pending
from ..ingest import SESSIONS, init_app
from ..sdk import SdkRequest
from .schemas import SessionEndIn, SessionStartIn

bp = Blueprint("sessions", __name__, url_prefix="/api")
bp.record_once(lambda state: init_app(state.app))


def start(req: SdkRequest) -> tuple[int, Any]:
    """Record a session start (201)."""
    key_hash, data = req.parse(SessionStartIn)
    item = Pending(kind="start", key_hash=key_hash, values=data.model_dump(exclude={"api_key"}))
    return 201, req.ingestor(SESSIONS).submit(req.db, item)


def end(req: SdkRequest) -> tuple[int, Any]:
    """Record a session end (200; idempotent, crashed is sticky)."""
    key_hash, data = req.parse(SessionEndIn)
    item = Pending(kind="end", key_hash=key_hash, values=data.model_dump(exclude={"api_key"}))
    return 200, req.ingestor(SESSIONS).submit(req.db, item)


FAST_ROUTES = {"/api/sessions/start": start, "/api/sessions/end": end}


@bp.post("/sessions/start")
def start_session() -> ResponseReturnValue:
    status, data = start(SdkRequest.from_flask())
    return web.ok(data, status)


@bp.post("/sessions/end")
def end_session() -> ResponseReturnValue:
    status, data = end(SdkRequest.from_flask())
    return web.ok(data, status)
