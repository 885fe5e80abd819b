"""HTTP routes of the public tracker, changelogs and branding (spec §5).

Settings routes (`/tracker`, `/branding`, `/changelogs`) need a bearer and a permission.
Public routes (`/public/...`) need nothing; a bearer, when sent, must be valid (401
otherwise) and makes the signed-in user the voter. A public route first resolves the
project and its enabled tracker (404 otherwise), then any feature switch (403), then the
body (400), so a disabled tracker and a missing project answer alike whatever is sent.
Updates are partial whether sent as PUT or PATCH.
"""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError

from bugnet_common import web

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

bp = Blueprint("public", __name__, url_prefix="/api")


def _public(slug: str) -> service.PublicProject:
    ctx.optional_principal()  # an invalid bearer is a 401 even here
    return service.public_project(session=ctx.session(), slug=slug)


def _filters() -> PublicBugFilters:
    try:
        return PublicBugFilters.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise web.validation_error(exc) from None


# ---- settings (members) ----------------------------------------------------------------------

@bp.get("/projects/<slug>/tracker")
def get_tracker(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "settings.manage")
    return web.ok(views.tracker_out(service.get_tracker(session=ctx.session(),
                                                        project=access.project)))


@bp.route("/projects/<slug>/tracker", methods=["PUT", "PATCH"])
def update_tracker(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "settings.manage", for_update=True)
    data = web.json_body(TrackerIn)
    tracker = service.update_tracker(session=ctx.session(), project=access.project, data=data)
    return web.ok(views.tracker_out(tracker))


@bp.get("/projects/<slug>/branding")
def get_branding(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "settings.manage")
    branding = service.get_branding(session=ctx.session(), project=access.project)
    return web.ok(views.branding_out(access.project, branding))


@bp.route("/projects/<slug>/branding", methods=["PUT", "PATCH"])
def update_branding(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "settings.manage")
    data = web.json_body(BrandingIn)
    branding = service.update_branding(session=ctx.session(), project=access.project, data=data)
    return web.ok(views.branding_out(access.project, branding))


@bp.get("/projects/<slug>/changelogs")
def list_changelogs(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "changelogs.manage")
    page = web.page_from_request()
    entries, total = service.list_changelogs(session=ctx.session(), project=access.project,
                                             page=page)
    return web.paginated(views.changelogs_out(ctx.session(), entries), page, total)


@bp.post("/projects/<slug>/changelogs")
def create_changelog(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "changelogs.manage")
    data = web.json_body(ChangelogIn)
    entry = service.create_changelog(session=ctx.session(), project=access.project, data=data)
    return web.created(views.changelogs_out(ctx.session(), [entry])[0])


@bp.get("/projects/<slug>/changelogs/<changelog_id>")
def get_changelog(slug: str, changelog_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "changelogs.manage")
    entry = service.get_changelog(session=ctx.session(), project=access.project,
                                  changelog_id=changelog_id)
    return web.ok(views.changelogs_out(ctx.session(), [entry])[0])


@bp.route("/projects/<slug>/changelogs/<changelog_id>", methods=["PATCH", "PUT"])
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
def public_tracker(slug: str) -> ResponseReturnValue:
    where = _public(slug)
    return web.ok(views.public_tracker_out(where.project, where.tracker))


@bp.get("/projects/<slug>/public/bugs")
def public_bugs(slug: str) -> ResponseReturnValue:
    where = _public(slug)
    filters, page = _filters(), web.page_from_request()
    bugs, total = service.list_public_bugs(session=ctx.session(), where=where, filters=filters,
                                           page=page)
    items = views.public_bugs(ctx.session(), bugs, tracker=where.tracker,
                              voter_key=ctx.client_key())
    return web.paginated(items, page, total)


@bp.get("/projects/<slug>/public/bugs/<bug_id>")
def public_bug(slug: str, bug_id: str) -> ResponseReturnValue:
    where = _public(slug)
    bug = service.get_public_bug(session=ctx.session(), where=where, bug_id=bug_id)
    return web.ok(views.public_bug_detail(ctx.session(), bug, tracker=where.tracker,
                                          voter_key=ctx.client_key()))


@bp.post("/projects/<slug>/public/bugs/<bug_id>/vote")
def vote(slug: str, bug_id: str) -> ResponseReturnValue:
    # No body is read: clients send none, with or without a Content-Type.
    where = _public(slug)
    bug = service.vote(session=ctx.session(), where=where, bug_id=bug_id,
                       voter_key=ctx.client_key())
    return web.ok({"votes": bug.votes, "voted": True})


@bp.post("/projects/<slug>/public/bugs")
def submit_bug(slug: str) -> ResponseReturnValue:
    where = _public(slug)
    service.ensure_submissions_open(where)
    data = web.json_body(PublicBugIn)
    bug = service.submit_bug(session=ctx.session(), where=where, data=data)
    return web.created(views.public_bug(bug, tracker=where.tracker, voted=False))


@bp.get("/projects/<slug>/public/changelogs")
def public_changelogs(slug: str) -> ResponseReturnValue:
    where = _public(slug)
    page = web.page_from_request()
    entries, total = service.list_public_changelogs(session=ctx.session(), where=where,
                                                    page=page)
    return web.paginated(views.public_changelogs(ctx.session(), entries), page, total)


@bp.get("/projects/<slug>/public/branding")
def public_branding(slug: str) -> ResponseReturnValue:
    where = _public(slug)
    branding = service.get_branding(session=ctx.session(), project=where.project)
    return web.ok(views.branding_out(where.project, branding))
