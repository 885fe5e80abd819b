"""HTTP routes of projects and API keys (spec §5, Projects)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import web

from .. import context as ctx
from ..sdk.storage import storage
from ..views import project_out
from . import service
from .schemas import ProjectIn, ProjectUpdate

bp = Blueprint("projects", __name__, url_prefix="/api")


@bp.get("/projects")
def list_projects() -> ResponseReturnValue:
    user_id = ctx.principal().user_id
    page = web.page_from_request()
    rows, total = service.list_projects(session=ctx.session(), user_id=user_id, page=page)
    return web.paginated([project_out(p, role) for p, role in rows], page, total)


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


@bp.route("/projects/<slug>", methods=["PATCH", "PUT"])
def update_project(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "settings.manage", for_update=True)
    data = web.json_body(ProjectUpdate)
    project = service.update_project(session=ctx.session(), project=access.project, data=data,
                                     actor_id=access.user_id)
    return web.ok(project_out(project, access.role))


@bp.delete("/projects/<slug>")
def delete_project(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "project.delete", for_update=True)
    out = project_out(access.project, access.role)
    service.delete_project(session=ctx.session(), project=access.project, actor_id=access.user_id,
                           storage=storage())
    return web.ok(out)


@bp.get("/projects/<slug>/api-key")
def get_api_key(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "api_key.manage")
    return web.ok({"api_key": service.masked_api_key(access.project)})


@bp.post("/projects/<slug>/api-key/regenerate")
def regenerate_api_key(slug: str) -> ResponseReturnValue:
    # No body is read: an empty one, with or without a Content-Type, is what clients send.
    access = ctx.access(slug, "api_key.manage", for_update=True)
    key = service.regenerate_api_key(session=ctx.session(), project=access.project,
                                     actor_id=access.user_id)
    return web.ok({"api_key": key})
