"""HTTP routes of the satisfaction area: players rating a fixed bug (spec §6)."""

from __future__ import annotations

from flask import Blueprint, g
from flask.typing import ResponseReturnValue

from bugnet_common import openapi, web

from .. import context as ctx
from ..ingest import init_app
from ..sdk import sdk_request
from . import service
from .schemas import SatisfactionIn

bp = Blueprint("satisfaction", __name__, url_prefix="/api")
bp.record_once(lambda state: init_app(state.app))


@bp.post("/satisfaction")
@openapi.operation(
    "Rate a fixed bug", tag="SDK", auth="api_key", body=SatisfactionIn,
    response=service.RatingOut, status=201, errors=(404, 409),
    description="Only resolved bugs can be rated (409 otherwise). One rating per bug and "
                "player (`steam_id`, else `player_email`, else the client IP): a second one "
                "replaces the first (`replaced`).")
def rate_bug() -> ResponseReturnValue:
    _key_hash, data = sdk_request(SatisfactionIn)
    project = ctx.sdk_project()
    rated = service.rate_bug(session=ctx.session(), project=project, data=data,
                             client_ip=g.client_ip)
    return web.created(service.rated_out(rated))
