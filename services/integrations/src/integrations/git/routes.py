"""HTTP routes of the git area (spec §7): the project's GitHub/GitLab settings and issues."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import web

from .. import context as ctx
from . import service
from .schemas import GitIntegrationIn

bp = Blueprint("git", __name__, url_prefix="/api")


@bp.get("/projects/<slug>/integrations/git")
def get_git(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "integrations.manage")
    git = service.get_integration(session=ctx.session(), project=access.project)
    return web.ok(service.integration_out(git))


@bp.post("/projects/<slug>/integrations/git")
def save_git(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "integrations.manage")
    data = web.json_body(GitIntegrationIn)
    git, created = service.save_integration(session=ctx.session(), project=access.project,
                                            data=data, actor_id=access.user_id,
                                            settings=ctx.settings())
    return web.ok(service.integration_out(git), 201 if created else 200)


@bp.delete("/projects/<slug>/integrations/git")
def delete_git(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "integrations.manage")
    git = service.delete_integration(session=ctx.session(), project=access.project)
    return web.ok(service.integration_out(git))


@bp.get("/projects/<slug>/bugs/<bug_id>/git-issue")
def get_git_issue(slug: str, bug_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.view")
    issue = service.get_issue(session=ctx.session(), project=access.project, bug_id=bug_id)
    return web.ok(service.issue_out(issue))


@bp.post("/projects/<slug>/bugs/<bug_id>/git-issue")
def create_git_issue(slug: str, bug_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.edit")
    issue = service.create_issue(session=ctx.session(), access=access, bug_id=bug_id,
                                 settings=ctx.settings())
    return web.created(service.issue_out(issue))
