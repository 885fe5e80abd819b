"""HTTP routes of the git area (spec §7): the project's GitHub/GitLab settings and issues."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bugnet_common import openapi, web

from .. import context as ctx
from . import service
from .schemas import GitIntegrationIn

bp = Blueprint("git", __name__, url_prefix="/api")
NEEDS = "Needs the integrations.manage permission."


@bp.get("/projects/<slug>/integrations/git")
@openapi.operation("Get the git integration", tag="Integrations",
                   response=service.GitIntegrationOut,
                   description="The token is never returned. 404 when none is configured. "
                               + NEEDS)
def get_git(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "integrations.manage")
    git = service.get_integration(session=ctx.session(), project=access.project)
    return web.ok(service.integration_out(git))


@bp.post("/projects/<slug>/integrations/git")
@openapi.operation(
    "Configure GitHub or GitLab", tag="Integrations", body=GitIntegrationIn,
    response=service.GitIntegrationOut, status=201, alt_statuses=(200,),
    description="Sets the project's repository and token, replacing any: 201 when new, 200 "
                "when replaced. `repository` is `owner/name` on GitHub, a project id or full "
                "path on GitLab. The token is stored encrypted and never returned. " + NEEDS)
def save_git(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "integrations.manage")
    data = web.json_body(GitIntegrationIn)
    git, created = service.save_integration(session=ctx.session(), project=access.project,
                                            data=data, actor_id=access.user_id,
                                            settings=ctx.settings())
    return web.ok(service.integration_out(git), 201 if created else 200)


@bp.delete("/projects/<slug>/integrations/git")
@openapi.operation("Remove the git integration", tag="Integrations",
                   response=service.GitIntegrationOut,
                   description="Answers the removed settings; issues already created stay "
                               "linked. " + NEEDS)
def delete_git(slug: str) -> ResponseReturnValue:
    access = ctx.access(slug, "integrations.manage")
    git = service.delete_integration(session=ctx.session(), project=access.project)
    return web.ok(service.integration_out(git))


@bp.get("/projects/<slug>/bugs/<bug_id>/git-issue")
@openapi.operation("Get a bug's git issue", tag="Integrations", response=service.GitIssueOut,
                   description="404 when no issue was created for the bug. Needs the "
                               "bugs.view permission.")
def get_git_issue(slug: str, bug_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.view")
    issue = service.get_issue(session=ctx.session(), project=access.project, bug_id=bug_id)
    return web.ok(service.issue_out(issue))


@bp.post("/projects/<slug>/bugs/<bug_id>/git-issue")
@openapi.operation(
    "Create a git issue from a bug", tag="Integrations", response=service.GitIssueOut,
    status=201, errors=(409, 502),
    description="Creates the issue on the configured provider and stores its `url` and "
                "`number`. 409 when the bug already has one (or one is being created) or no "
                "git integration is configured; 502 when the provider fails, and then nothing "
                "is stored. Needs the bugs.edit permission.")
def create_git_issue(slug: str, bug_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.edit")
    issue = service.create_issue(session=ctx.session(), access=access, bug_id=bug_id,
                                 settings=ctx.settings())
    return web.created(service.issue_out(issue))
