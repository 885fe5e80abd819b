"""HTTP routes of the labels area (spec §5, Labels)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import openapi, web

from .. import context as ctx
from ..views import BugOut, bugs_out
from . import service
from .schemas import BugLabelIn, LabelIn, LabelPatch
from .service import LabelOut

bp = Blueprint("labels", __name__, url_prefix="/api")


@bp.get("/projects/<slug>/labels")
@openapi.operation("List labels", tag="Labels", response=LabelOut, paginated=True,
                   description="Needs `bugs.view`.")
def list_labels(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.view")
    page = web.page_from_request()
    rows, total = service.list_labels(session=ctx.session(), project=access.project, page=page)
    return web.paginated([service.label_out(label) for label in rows], page, total)


@bp.post("/projects/<slug>/labels")
@openapi.operation("Create a label", tag="Labels", body=LabelIn, response=LabelOut, status=201,
                   errors=(409,),
                   description="Needs `labels.manage`. Names are unique in a project, "
                               "case-insensitively (409 when taken).")
def create_label(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "labels.manage")
    data = web.json_body(LabelIn)
    label = service.create_label(session=ctx.session(), project=access.project, data=data)
    return web.created(service.label_out(label))


@bp.route("/projects/<slug>/labels/<label_id>", methods=["PATCH", "PUT"])
@openapi.operation("Update a label", tag="Labels", body=LabelPatch, response=LabelOut,
                   errors=(409,),
                   description="Needs `labels.manage`. Only the fields sent change.")
def update_label(slug: str, label_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "labels.manage")
    data = web.json_body(LabelPatch)
    label = service.update_label(session=ctx.session(), project=access.project,
                                 label_id=label_id, data=data)
    return web.ok(service.label_out(label))


@bp.delete("/projects/<slug>/labels/<label_id>")
@openapi.operation("Delete a label", tag="Labels", response=LabelOut,
                   description="Needs `labels.manage`. Removes it from every bug; answers the "
                               "deleted label.")
def delete_label(slug: str, label_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "labels.manage")
    label = service.delete_label(session=ctx.session(), project=access.project, label_id=label_id)
    return web.ok(service.label_out(label))


@bp.post("/projects/<slug>/bugs/<bug_id>/labels")
@openapi.operation("Add a label to a bug", tag="Labels", body=BugLabelIn, response=BugOut,
                   description="Needs `bugs.edit`. `label_id` is one of the project's labels; "
                               "the change is recorded in the bug's activity. Answers the bug.")
def attach_label(slug: str, bug_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.edit")
    data = web.json_body(BugLabelIn)
    session = ctx.session()
    bug = service.attach_label(session=session, access=access, bug_id=bug_id,
                               label_id=data.label_id)
    return web.ok(bugs_out(session, [bug])[0])


@bp.delete("/projects/<slug>/bugs/<bug_id>/labels/<label_id>")
@openapi.operation("Remove a label from a bug", tag="Labels", response=BugOut,
                   description="Needs `bugs.edit`. Answers the bug.")
def detach_label(slug: str, bug_id: str, label_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.edit")
    session = ctx.session()
    bug = service.detach_label(session=session, access=access, bug_id=bug_id, label_id=label_id)
    return web.ok(bugs_out(session, [bug])[0])
