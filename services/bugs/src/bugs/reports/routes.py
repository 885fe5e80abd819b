"""HTTP routes of the reports area (spec §5, Bugs): parse, authorize by permission, call, wrap."""

from __future__ import annotations

import math

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from bugnet_common import web

from .. import context as ctx
from ..views import bugs_out, users_by_id
from . import service
from .schemas import BugIn, BugPatch, BulkIn, CommentIn, SimilarIn, filters_from_args
from .views import activities_out, bug_detail_out, comment_out

bp = Blueprint("reports", __name__, url_prefix="/api")


@bp.get("/projects/<slug>/bugs")
def list_bugs(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.view")
    filters = filters_from_args(request.args, me=access.user_id)
    page = web.page_from_request()
    session = ctx.session()
    found = service.list_bugs(session=session, project=access.project, filters=filters, page=page)
    meta = {"page": page.page, "limit": page.limit, "total": found.total,
            "pages": math.ceil(found.total / page.limit)}
    if not found.exact:
        meta["total_exact"] = False  # a broad search: the planner's estimate (search.py)
    return web.ok(bugs_out(session, found.bugs), meta=meta)


@bp.post("/projects/<slug>/bugs")
def create_bug(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.create")
    data = web.json_body(BugIn)
    session = ctx.session()
    bug = service.create_bug(session=session, project=access.project, data=data,
                             source="dashboard", reporter_user_id=access.user_id)
    return web.created(bugs_out(session, [bug])[0])


@bp.post("/projects/<slug>/bugs/bulk")
def bulk_update(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.edit")
    data = web.json_body(BulkIn)
    updated = service.bulk_update(session=ctx.session(), access=access, data=data)
    return web.ok({"updated": updated})


@bp.post("/projects/<slug>/bugs/similar")
def similar_bugs(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.view")
    data = web.json_body(SimilarIn)
    session = ctx.session()
    ranked = service.similar_bugs(session=session, project=access.project, title=data.title,
                                  description=data.description)
    shown = bugs_out(session, [bug for bug, _ in ranked])
    return web.ok([{"bug": out, "score": score} for out, (_, score) in zip(shown, ranked,
                                                                          strict=True)])


@bp.get("/projects/<slug>/bugs/<bug_id>")
def get_bug(slug: str, bug_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.view")
    detail = service.get_bug(session=ctx.session(), project=access.project, bug_id=bug_id)
    return web.ok(bug_detail_out(detail, access.project))


@bp.route("/projects/<slug>/bugs/<bug_id>", methods=["PATCH", "PUT"])
def update_bug(slug: str, bug_id: str) -> ResponseReturnValue:
    # Changing the assignee also needs bugs.assign: checked by the use case, which knows
    # whether the assignee actually changes.
    access = ctx.access(slug, "bugs.edit")
    data = web.json_body(BugPatch)
    session = ctx.session()
    bug = service.update_bug(session=session, access=access, bug_id=bug_id, data=data)
    return web.ok(bugs_out(session, [bug])[0])


@bp.delete("/projects/<slug>/bugs/<bug_id>")
def delete_bug(slug: str, bug_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.delete")
    session = ctx.session()
    shown = bugs_out(session, [service.find_bug(session, access.project, bug_id)])[0]
    service.delete_bug(session=session, access=access, bug_id=bug_id)
    return web.ok(shown)


@bp.post("/projects/<slug>/bugs/<bug_id>/comments")
def add_comment(slug: str, bug_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "comments.create")
    data = web.json_body(CommentIn)
    session = ctx.session()
    comment = service.add_comment(session=session, access=access, bug_id=bug_id, data=data)
    return web.created(comment_out(comment, users_by_id(session, [comment.author_id])))


@bp.get("/projects/<slug>/bugs/<bug_id>/activity")
def list_activity(slug: str, bug_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.view")
    page = web.page_from_request()
    rows, total, users = service.list_activity(session=ctx.session(), project=access.project,
                                               bug_id=bug_id, page=page)
    return web.paginated(activities_out(rows, users), page, total)


@bp.post("/projects/<slug>/bugs/<bug_id>/upvote")
def upvote(slug: str, bug_id: str) -> ResponseReturnValue:
    # Public: no token needed; a valid one makes the caller the voter (and may make them a
    # member, who can vote on any bug). No body is read: spec §1 allows an empty POST.
    session = ctx.session()
    principal = ctx.optional_principal()
    project = service.project_or_404(session, slug)
    votes = service.upvote(session=session, project=project, bug_id=bug_id,
                           voter_key=ctx.client_key(),
                           user_id=principal.user_id if principal else None)
    return web.ok({"votes": votes})

