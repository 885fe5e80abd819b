"""HTTP routes of the satisfaction area: players rating a fixed bug (spec §6)."""

from __future__ import annotations

from flask import Blueprint, g
from flask.typing import ResponseReturnValue

from bugnet_common import web

from .. import context as ctx
from ..ingest import init_app
from ..sdk import sdk_request
from . import service
from .schemas import SatisfactionIn

bp = Blueprint("satisfaction", __name__, url_prefix="/api")
bp.record_once(lambda state: init_app(state.app))


@bp.post("/satisfaction")
def rate_bug() -> ResponseReturnValue:
    _key_hash, data = sdk_request(SatisfactionIn)
    project = ctx.sdk_project()
    rated = service.rate_bug(session=ctx.session(), project=project, data=data,
                             client_ip=g.client_ip)
    return web.created(service.rated_out(rated))
