"""HTTP routes of projects and API keys (spec §5, Projects)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import web

from .. import context as ctx
from ..views import project_out
from . import service
from .schemas import ProjectIn

bp = Blueprint("projects", __name__, url_prefix="/api")


@bp.get("/projects")
def list_projects() -> ResponseReturnValue:
    rows = service.list_projects(session=ctx.session(), user_id=ctx.principal().user_id)
    return web.ok([project_out(p, role) for p, role in rows])


@bp.post("/projects")
def create_project() -> ResponseReturnValue:
    principal = ctx.principal()
    data = web.json_body(ProjectIn)
    created = service.create_project(session=ctx.session(), principal=principal, data=data)
    return web.created(project_out(created.project, "owner") | {"api_key": created.api_key})


@bp.get("/projects/<slug>")
def get_project(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug)
    return web.ok(project_out(access.project, access.role))
