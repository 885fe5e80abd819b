"""HTTP routes of the sessions area: game clients' session starts and ends (spec §6, §8).

These are the hottest endpoints of the system: `FAST_ROUTES` lets the WSGI fast path
(`fastpath.py`) answer them without Flask's request machinery; the Flask routes below are the
same handlers, used when the fast path is switched off (settings.sdk_fast_path).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import openapi, web

from ..batching import Pending
from ..ingest import SESSIONS, init_app
from ..sdk import SdkRequest, declared
from .schemas import SessionEndedOut, SessionEndIn, SessionStartedOut, SessionStartIn

bp = Blueprint("sessions", __name__, url_prefix="/api")
bp.record_once(lambda state: init_app(state.app))


@declared("sessions.start_session")
def start(req: SdkRequest) -> tuple[int, Any]:
    """Record a session start (201)."""
    key_hash, data = req.parse(SessionStartIn)
    item = Pending(kind="start", key_hash=key_hash, values=data.model_dump(exclude={"api_key"}))
    return 201, req.ingestor(SESSIONS).submit(req.db, item)


@declared("sessions.end_session")
def end(req: SdkRequest) -> tuple[int, Any]:
    """Record a session end (200; idempotent, crashed is sticky)."""
    key_hash, data = req.parse(SessionEndIn)
    item = Pending(kind="end", key_hash=key_hash, values=data.model_dump(exclude={"api_key"}))
    return 200, req.ingestor(SESSIONS).submit(req.db, item)


FAST_ROUTES = {"/api/sessions/start": start, "/api/sessions/end": end}


@bp.post("/sessions/start")
@openapi.operation(
    "Start a play session", tag="Sessions", auth="api_key", body=SessionStartIn,
    response=SessionStartedOut, status=201, errors=(409,),
    description="The API key may come as `X-API-Key` or as `api_key` in the body. A second "
                "start of a token records nothing more; a token another project used first "
                "is 409.")
def start_session() -> ResponseReturnValue:
    status, data = start(SdkRequest.from_flask())
    return web.ok(data, status)


@bp.post("/sessions/end")
@openapi.operation(
    "End a play session", tag="Sessions", auth="api_key", body=SessionEndIn,
    response=SessionEndedOut, errors=(409,),
    description="Idempotent; once crashed, a session stays crashed. An unknown token is "
                "accepted and recorded as a session started now. The API key may come as "
                "`X-API-Key` or as `api_key` in the body.")
def end_session() -> ResponseReturnValue:
    status, data = end(SdkRequest.from_flask())
    return web.ok(data, status)
