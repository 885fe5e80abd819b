"""HTTP routes of projects and API keys (spec §5, Projects)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from typing_extensions import TypedDict

from bugnet_common import openapi, web

from .. import context as ctx
from ..sdk.storage import storage
from ..views import ProjectOut, project_out
from . import service
from .schemas import ProjectIn, ProjectUpdate

bp = Blueprint("projects", __name__, url_prefix="/api")


class ProjectCreatedOut(ProjectOut):
    """A new project, with its API key in full (shown this once)."""

    api_key: str


class ApiKeyOut(TypedDict):
    api_key: str


@bp.get("/projects")
@openapi.operation("List your projects", tag="Projects", response=ProjectOut, paginated=True,
                   description="The projects the caller belongs to, newest first, each with "
                               "the caller's role.")
def list_projects() -> ResponseReturnValue:
    user_id = ctx.principal().user_id
    page = web.page_from_request()
    rows, total = service.list_projects(session=ctx.session(), user_id=user_id, page=page)
    return web.paginated([project_out(p, role) for p, role in rows], page, total)


@bp.post("/projects")
@openapi.operation("Create a project", tag="Projects", body=ProjectIn, response=ProjectCreatedOut,
                   status=201, errors=(409,),
                   description="The caller becomes its owner. The slug is derived from the name "
                               "when not given (409 when taken). The answer carries the API "
                               "key in full: it is shown this once.")
def create_project() -> ResponseReturnValue:
    principal = ctx.principal()
    data = web.json_body(ProjectIn)
    created = service.create_project(session=ctx.session(), principal=principal, data=data)
    return web.created(ProjectCreatedOut(**project_out(created.project, "owner"),
                                         api_key=created.api_key))


@bp.get("/projects/<slug>")
@openapi.operation("Get a project", tag="Projects", response=ProjectOut,
                   description="Any member may read it.")
def get_project(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug)
    return web.ok(project_out(access.project, access.role))


@bp.route("/projects/<slug>", methods=["PATCH", "PUT"])
@openapi.operation("Update a project", tag="Projects", body=ProjectUpdate, response=ProjectOut,
                   description="Needs `settings.manage`. Only the fields sent change (PUT and "
                               "PATCH alike); `null` clears description and website; the slug "
                               "cannot change.")
def update_project(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "settings.manage", for_update=True)
    data = web.json_body(ProjectUpdate)
    project = service.update_project(session=ctx.session(), project=access.project, data=data,
                                     actor_id=access.user_id)
    return web.ok(project_out(project, access.role))


@bp.delete("/projects/<slug>")
@openapi.operation("Delete a project", tag="Projects", response=ProjectOut,
                   description="Needs `project.delete` (the owner). Deletes its team, bugs, "
                               "labels, pages and attachments; answers the deleted project.")
def delete_project(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "project.delete", for_update=True)
    out = project_out(access.project, access.role)
    service.delete_project(session=ctx.session(), project=access.project, actor_id=access.user_id,
                           storage=storage())
    return web.ok(out)


@bp.get("/projects/<slug>/api-key")
@openapi.operation("Get the project's API key (masked)", tag="Projects", response=ApiKeyOut,
                   description="Needs `api_key.manage`. The key is shown in full only at "
                               "creation and after regeneration; this answers a masked form "
                               "(`sk_live_…abcd`).")
def get_api_key(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "api_key.manage")
    return web.ok(ApiKeyOut(api_key=service.masked_api_key(access.project)))


@bp.post("/projects/<slug>/api-key/regenerate")
@openapi.operation("Regenerate the project's API key", tag="Projects", response=ApiKeyOut,
                   description="Needs `api_key.manage`. Answers the new key in full; the old "
                               "one stops working at once. Takes no body.")
def regenerate_api_key(slug: str) -> ResponseReturnValue:
    # No body is read: an empty one, with or without a Content-Type, is what clients send.
    access = ctx.access(slug, "api_key.manage", for_update=True)
    key = service.regenerate_api_key(session=ctx.session(), project=access.project,
                                     actor_id=access.user_id)
    return web.ok(ApiKeyOut(api_key=key))
