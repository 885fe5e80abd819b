"""HTTP routes of the reports area (spec §5, Bugs): parse, authorize by permission, call, wrap."""

from __future__ import annotations

import math
from typing import NotRequired

from flask import Blueprint
from flask.typing import ResponseReturnValue
from typing_extensions import TypedDict

from bugnet_common import openapi, web

from .. import context as ctx
from ..views import BugOut, bugs_out, users_by_id
from . import service
from .schemas import (
    BugIn,
    BugListQuery,
    BugPatch,
    BulkIn,
    CommentIn,
    SimilarIn,
    filters_from_args,
)
from .views import (
    ActivityOut,
    BugDetailOut,
    CommentOut,
    activities_out,
    bug_detail_out,
    comment_out,
)

bp = Blueprint("reports", __name__, url_prefix="/api")


class BugListMeta(TypedDict):
    """The page of a bug list; `total_exact` is false (and `total` an estimate) for a broad
    search."""

    page: int
    limit: int
    total: int
    pages: int
    total_exact: NotRequired[bool]


class BulkOut(TypedDict):
    updated: int


class SimilarBugOut(TypedDict):
    """A bug like the one described, and how alike, in [0, 1]."""

    bug: BugOut
    score: float


class UpvoteOut(TypedDict):
    votes: int


@bp.get("/projects/<slug>/bugs")
@openapi.operation(
    "List bugs", tag="Bugs", query=BugListQuery, response=BugOut, paginated=True,
    meta=BugListMeta,
    description="Needs `bugs.view`. Filters combine; list filters take comma-separated values. "
                "Newest first unless `sort` is given, by relevance when searching. For a broad "
                "search `meta.total` is an estimate and `meta.total_exact` is false.")
def list_bugs(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.view")
    query = web.query_args(BugListQuery)
    filters = filters_from_args(query.args(), me=access.user_id)
    page = web.page_from_request()
    session = ctx.session()
    found = service.list_bugs(session=session, project=access.project, filters=filters, page=page)
    meta = BugListMeta(page=page.page, limit=page.limit, total=found.total,
                       pages=math.ceil(found.total / page.limit))
    if not found.exact:
        meta["total_exact"] = False  # a broad search: the planner's estimate (search.py)
    return web.ok(bugs_out(session, found.bugs), meta=dict(meta))


@bp.post("/projects/<slug>/bugs")
@openapi.operation("Create a bug", tag="Bugs", body=BugIn, response=BugOut, status=201,
                   description="Needs `bugs.create`. The caller is the reporter; the bug gets "
                               "the project's next `number`.")
def create_bug(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.create")
    data = web.json_body(BugIn)
    session = ctx.session()
    bug = service.create_bug(session=session, project=access.project, data=data,
                             source="dashboard", reporter_user_id=access.user_id)
    return web.created(bugs_out(session, [bug])[0])


@bp.post("/projects/<slug>/bugs/bulk")
@openapi.operation("Update many bugs", tag="Bugs", body=BulkIn, response=BulkOut,
                   description="Needs `bugs.edit` (and `bugs.assign` to change the assignee). "
                               "One change applied to up to 500 bugs, all or nothing: 404 "
                               "naming the first id that is not this project's.")
def bulk_update(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.edit")
    data = web.json_body(BulkIn)
    updated = service.bulk_update(session=ctx.session(), access=access, data=data)
    return web.ok(BulkOut(updated=updated))


@bp.post("/projects/<slug>/bugs/similar")
@openapi.operation("Find similar bugs", tag="Bugs", body=SimilarIn,
                   response=list[SimilarBugOut],
                   description="Needs `bugs.view`. Up to 10 existing bugs most like a title and "
                               "description, best first, each with a score in [0, 1].")
def similar_bugs(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.view")
    data = web.json_body(SimilarIn)
    session = ctx.session()
    ranked = service.similar_bugs(session=session, project=access.project, title=data.title,
                                  description=data.description)
    shown = bugs_out(session, [bug for bug, _ in ranked])
    return web.ok([SimilarBugOut(bug=out, score=score)
                   for out, (_, score) in zip(shown, ranked, strict=True)])


@bp.get("/projects/<slug>/bugs/<bug_id>")
@openapi.operation("Get a bug", tag="Bugs", response=BugDetailOut,
                   description="Needs `bugs.view`. The bug with its labels, comments (internal "
                               "ones too), latest 50 activity entries and attachments.")
def get_bug(slug: str, bug_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.view")
    detail = service.get_bug(session=ctx.session(), project=access.project, bug_id=bug_id)
    return web.ok(bug_detail_out(detail, access.project))


@bp.route("/projects/<slug>/bugs/<bug_id>", methods=["PATCH", "PUT"])
@openapi.operation("Update a bug", tag="Bugs", body=BugPatch, response=BugOut,
                   description="Needs `bugs.edit`; changing the assignee also needs "
                               "`bugs.assign`. Only the fields sent change; `assignee: null` "
                               "unassigns. Each change is recorded in the activity.")
def update_bug(slug: str, bug_id: str) -> ResponseReturnValue:
    # Changing the assignee also needs bugs.assign: checked by the use case, which knows
    # whether the assignee actually changes.
    access = ctx.access(slug, "bugs.edit")
    data = web.json_body(BugPatch)
    session = ctx.session()
    bug = service.update_bug(session=session, access=access, bug_id=bug_id, data=data)
    return web.ok(bugs_out(session, [bug])[0])


@bp.delete("/projects/<slug>/bugs/<bug_id>")
@openapi.operation("Delete a bug", tag="Bugs", response=BugOut,
                   description="Needs `bugs.delete`. Deletes it with its comments, activity and "
                               "attachments; answers the deleted bug.")
def delete_bug(slug: str, bug_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.delete")
    session = ctx.session()
    shown = bugs_out(session, [service.find_bug(session, access.project, bug_id)])[0]
    service.delete_bug(session=session, access=access, bug_id=bug_id)
    return web.ok(shown)


@bp.post("/projects/<slug>/bugs/<bug_id>/comments")
@openapi.operation("Comment on a bug", tag="Comments", body=CommentIn, response=CommentOut,
                   status=201,
                   description="Needs `comments.create`; an internal comment also needs "
                               "`comments.internal`.")
def add_comment(slug: str, bug_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "comments.create")
    data = web.json_body(CommentIn)
    session = ctx.session()
    comment = service.add_comment(session=session, access=access, bug_id=bug_id, data=data)
    return web.created(comment_out(comment, users_by_id(session, [comment.author_id])))


@bp.get("/projects/<slug>/bugs/<bug_id>/activity")
@openapi.operation("List a bug's activity", tag="Bugs", response=ActivityOut, paginated=True,
                   description="Needs `bugs.view`. Every change, comment and occurrence, "
                               "newest first.")
def list_activity(slug: str, bug_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.view")
    page = web.page_from_request()
    rows, total, users = service.list_activity(session=ctx.session(), project=access.project,
                                               bug_id=bug_id, page=page)
    return web.paginated(activities_out(rows, users), page, total)


@bp.post("/projects/<slug>/bugs/<bug_id>/upvote")
@openapi.operation("Upvote a bug", tag="Bugs", response=UpvoteOut,
                   description="Public: a bearer token, when sent, makes the signed-in user the "
                               "voter. One vote per client (user, else IP and user agent); a "
                               "repeat changes nothing. Non-members may vote only on public bugs "
                               "of an enabled tracker that allows voting. Takes no body.")
def upvote(slug: str, bug_id: str) -> ResponseReturnValue:
    # Public: no token needed; a valid one makes the caller the voter (and may make them a
    # member, who can vote on any bug). No body is read: spec §1 allows an empty POST.
    session = ctx.session()
    principal = ctx.optional_principal()
    project = service.project_or_404(session, slug)
    votes = service.upvote(session=session, project=project, bug_id=bug_id,
                           voter_key=ctx.client_key(),
                           user_id=principal.user_id if principal else None)
    return web.ok(UpvoteOut(votes=votes))

