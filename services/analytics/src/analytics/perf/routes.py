"""HTTP routes of the perf area: game clients' performance snapshots (spec §6, §8).
`FAST_ROUTES` lets the WSGI fast path (`fastpath.py`) answer them without Flask's request
machinery; the Flask route is the same handler, used when the fast path is switched off."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import openapi, web

from ..batching import Pending
from ..ingest import PERF, init_app
from ..sdk import SdkRequest, declared
from .schemas import PerfSnapshotIn
from .service import SnapshotStoredOut, snapshot_values

bp = Blueprint("perf", __name__, url_prefix="/api")
bp.record_once(lambda state: init_app(state.app))


@declared("perf.add_snapshot")
def snapshot(req: SdkRequest) -> tuple[int, Any]:
    """Store one perf snapshot (201)."""
    key_hash, data = req.parse(PerfSnapshotIn)
    item = Pending(kind="perf", key_hash=key_hash, values=snapshot_values(data),
                   project_id=req.project_id_of(key_hash))
    return 201, req.ingestor(PERF).submit(req.db, item)


FAST_ROUTES = {"/api/perf/snapshot": snapshot}


@bp.post("/perf/snapshot")
@openapi.operation(
    "Send a performance snapshot", tag="SDK", auth="api_key", body=PerfSnapshotIn,
    response=SnapshotStoredOut, status=201,
    description="`custom_metrics` may be an object or a JSON-encoded object; a scene and its "
                "load time found there (`scene`, `scene_load_ms`...) feed the scene load "
                "times. `bug_report_id` attaches the snapshot to a bug.")
def add_snapshot() -> ResponseReturnValue:
    status, data = snapshot(SdkRequest.from_flask())
    return web.ok(data, status)
