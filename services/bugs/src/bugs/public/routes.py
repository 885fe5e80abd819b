"""HTTP routes of the public tracker, changelogs and branding (spec §5).

Settings routes (`/tracker`, `/branding`, `/changelogs`) need a bearer and a permission.
Public routes (`/public/...`) need nothing; a bearer, when sent, must be valid (401
otherwise) and makes the signed-in user the voter. A public route first resolves the
project and its enabled tracker (404 otherwise), then any feature switch (403), then the
body (400), so a disabled tracker and a missing project answer alike whatever is sent.
Updates are partial whether sent as PUT or PATCH.
"""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from typing_extensions import TypedDict

from bugnet_common import openapi, web

from .. import context as ctx
from . import service, views
from .schemas import (
    BrandingIn,
    ChangelogIn,
    ChangelogPatch,
    PublicBugFilters,
    PublicBugIn,
    TrackerIn,
)
from .views import (
    BrandingOut,
    ChangelogOut,
    PublicBugDetailOut,
    PublicBugOut,
    PublicChangelogOut,
    PublicTrackerOut,
    TrackerOut,
)

bp = Blueprint("public", __name__, url_prefix="/api")

PUBLIC = ("Public: no token needed; a bearer token, when sent, must be valid. 404 unless the "
          "project exists and its tracker is enabled.")


class PublicVoteOut(TypedDict):
    votes: int
    voted: bool


def _public(slug: str) -> service.PublicProject:
    ctx.optional_principal()  # an invalid bearer is a 401 even here
    return service.public_project(session=ctx.session(), slug=slug)


def _filters() -> PublicBugFilters:
    return web.query_args(PublicBugFilters)


# ---- settings (members) ----------------------------------------------------------------------

@bp.get("/projects/<slug>/tracker")
@openapi.operation("Get the public tracker settings", tag="Public tracker", response=TrackerOut,
                   description="Needs `settings.manage`.")
def get_tracker(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "settings.manage")
    return web.ok(views.tracker_out(service.get_tracker(session=ctx.session(),
                                                        project=access.project)))


@bp.route("/projects/<slug>/tracker", methods=["PUT", "PATCH"])
@openapi.operation("Update the public tracker settings", tag="Public tracker", body=TrackerIn,
                   response=TrackerOut,
                   description="Needs `settings.manage`. Partial for PUT and PATCH alike; "
                               "`null` clears the title or description. `enabled` is the "
                               "project's `settings.public_tracker`.")
def update_tracker(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "settings.manage", for_update=True)
    data = web.json_body(TrackerIn)
    tracker = service.update_tracker(session=ctx.session(), project=access.project, data=data)
    return web.ok(views.tracker_out(tracker))


@bp.get("/projects/<slug>/branding")
@openapi.operation("Get the branding", tag="Public tracker", response=BrandingOut,
                   description="Needs `settings.manage`.")
def get_branding(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "settings.manage")
    branding = service.get_branding(session=ctx.session(), project=access.project)
    return web.ok(views.branding_out(access.project, branding))


@bp.route("/projects/<slug>/branding", methods=["PUT", "PATCH"])
@openapi.operation("Update the branding", tag="Public tracker", body=BrandingIn,
                   response=BrandingOut,
                   description="Needs `settings.manage`. Partial for PUT and PATCH alike; "
                               "`null` clears a value. Colors are `#rrggbb`.")
def update_branding(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "settings.manage")
    data = web.json_body(BrandingIn)
    branding = service.update_branding(session=ctx.session(), project=access.project, data=data)
    return web.ok(views.branding_out(access.project, branding))


@bp.get("/projects/<slug>/changelogs")
@openapi.operation("List changelog entries", tag="Changelogs", response=ChangelogOut,
                   paginated=True,
                   description="Needs `changelogs.manage`. Drafts and published entries.")
def list_changelogs(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "changelogs.manage")
    page = web.page_from_request()
    entries, total = service.list_changelogs(session=ctx.session(), project=access.project,
                                             page=page)
    return web.paginated(views.changelogs_out(ctx.session(), entries), page, total)


@bp.post("/projects/<slug>/changelogs")
@openapi.operation("Create a changelog entry", tag="Changelogs", body=ChangelogIn,
                   response=ChangelogOut, status=201,
                   description="Needs `changelogs.manage`. `bug_ids` name bugs of this "
                               "project; `published` makes it visible on the public tracker.")
def create_changelog(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "changelogs.manage")
    data = web.json_body(ChangelogIn)
    entry = service.create_changelog(session=ctx.session(), project=access.project, data=data)
    return web.created(views.changelogs_out(ctx.session(), [entry])[0])


@bp.get("/projects/<slug>/changelogs/<changelog_id>")
@openapi.operation("Get a changelog entry", tag="Changelogs", response=ChangelogOut,
                   description="Needs `changelogs.manage`.")
def get_changelog(slug: str, changelog_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "changelogs.manage")
    entry = service.get_changelog(session=ctx.session(), project=access.project,
                                  changelog_id=changelog_id)
    return web.ok(views.changelogs_out(ctx.session(), [entry])[0])


@bp.route("/projects/<slug>/changelogs/<changelog_id>", methods=["PATCH", "PUT"])
@openapi.operation("Update a changelog entry", tag="Changelogs", body=ChangelogPatch,
                   response=ChangelogOut,
                   description="Needs `changelogs.manage`. Only the fields sent change.")
def update_changelog(slug: str, changelog_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "changelogs.manage")
    # 404 for an unknown entry before the body is judged.
    service.get_changelog(session=ctx.session(), project=access.project,
                          changelog_id=changelog_id)
    data = web.json_body(ChangelogPatch)
    entry = service.update_changelog(session=ctx.session(), project=access.project,
                                     changelog_id=changelog_id, data=data)
    return web.ok(views.changelogs_out(ctx.session(), [entry])[0])


@bp.delete("/projects/<slug>/changelogs/<changelog_id>")
@openapi.operation("Delete a changelog entry", tag="Changelogs", response=ChangelogOut,
                   description="Needs `changelogs.manage`. Answers the deleted entry.")
def delete_changelog(slug: str, changelog_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "changelogs.manage")
    entry = service.get_changelog(session=ctx.session(), project=access.project,
                                  changelog_id=changelog_id)
    out = views.changelogs_out(ctx.session(), [entry])[0]
    service.delete_changelog(session=ctx.session(), project=access.project,
                             changelog_id=changelog_id)
    return web.ok(out)


# ---- public (players) ------------------------------------------------------------------------

@bp.get("/projects/<slug>/public/tracker")
@openapi.operation("Get a public tracker", tag="Public tracker", response=PublicTrackerOut,
                   description=PUBLIC + " Which controls the page offers.")
def public_tracker(slug: str) -> ResponseReturnValue:
    where = _public(slug)
    return web.ok(views.public_tracker_out(where.project, where.tracker))


@bp.get("/projects/<slug>/public/bugs")
@openapi.operation("List public bugs", tag="Public tracker", query=PublicBugFilters,
                   response=PublicBugOut, paginated=True,
                   description=PUBLIC + " Only bugs marked public, with public fields only. "
                               "`search` (400 when the tracker turns search off) ranks by "
                               "relevance unless `sort` is given; `category` only on a tracker "
                               "that shows categories.")
def public_bugs(slug: str) -> ResponseReturnValue:
    where = _public(slug)
    filters, page = _filters(), web.page_from_request()
    bugs, total = service.list_public_bugs(session=ctx.session(), where=where, filters=filters,
                                           page=page)
    items = views.public_bugs(ctx.session(), bugs, tracker=where.tracker,
                              voter_key=ctx.client_key())
    return web.paginated(items, page, total)


@bp.get("/projects/<slug>/public/bugs/<bug_id>")
@openapi.operation("Get a public bug", tag="Public tracker", response=PublicBugDetailOut,
                   description=PUBLIC + " With its non-internal comments.")
def public_bug(slug: str, bug_id: str) -> ResponseReturnValue:
    where = _public(slug)
    bug = service.get_public_bug(session=ctx.session(), where=where, bug_id=bug_id)
    return web.ok(views.public_bug_detail(ctx.session(), bug, tracker=where.tracker,
                                          voter_key=ctx.client_key()))


@bp.post("/projects/<slug>/public/bugs/<bug_id>/vote")
@openapi.operation("Vote for a public bug", tag="Public tracker", response=PublicVoteOut,
                   errors=(403,),
                   description=PUBLIC + " One vote per client (the signed-in user, else IP "
                               "and user agent); a repeat changes nothing. 403 when voting is "
                               "turned off. Takes no body.")
def vote(slug: str, bug_id: str) -> ResponseReturnValue:
    # No body is read: clients send none, with or without a Content-Type.
    where = _public(slug)
    bug = service.vote(session=ctx.session(), where=where, bug_id=bug_id,
                       voter_key=ctx.client_key())
    return web.ok(PublicVoteOut(votes=bug.votes, voted=True))


@bp.post("/projects/<slug>/public/bugs")
@openapi.operation("Submit a bug as a player", tag="Public tracker", body=PublicBugIn,
                   response=PublicBugOut, status=201, errors=(403,),
                   description=PUBLIC + " 403 unless the tracker allows submissions.")
def submit_bug(slug: str) -> ResponseReturnValue:
    where = _public(slug)
    service.ensure_submissions_open(where)
    data = web.json_body(PublicBugIn)
    bug = service.submit_bug(session=ctx.session(), where=where, data=data)
    return web.created(views.public_bug(bug, tracker=where.tracker, voted=False))


@bp.get("/projects/<slug>/public/changelogs")
@openapi.operation("List published changelog entries", tag="Public tracker",
                   response=PublicChangelogOut, paginated=True,
                   description=PUBLIC + " Newest first.")
def public_changelogs(slug: str) -> ResponseReturnValue:
    where = _public(slug)
    page = web.page_from_request()
    entries, total = service.list_public_changelogs(session=ctx.session(), where=where,
                                                    page=page)
    return web.paginated(views.public_changelogs(ctx.session(), entries), page, total)


@bp.get("/projects/<slug>/public/branding")
@openapi.operation("Get a public tracker's branding", tag="Public tracker",
                   response=BrandingOut, description=PUBLIC)
def public_branding(slug: str) -> ResponseReturnValue:
    where = _public(slug)
    branding = service.get_branding(session=ctx.session(), project=where.project)
    return web.ok(views.branding_out(where.project, branding))
