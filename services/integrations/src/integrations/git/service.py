"""Use cases of the git area: the project's GitHub/GitLab settings and issues from bugs.

Creating an issue calls the provider inside the request, so it cannot be one transaction:
the `git_issues` row is first claimed (committed, `url` null), the provider called, then the
row completed — or deleted when the provider failed, so nothing is stored. A second request
for the same bug meets the claim and gets 409; a claim left by a crashed process is taken
over after `CLAIM_SECONDS`.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any, cast

import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Session, select
from typing_extensions import TypedDict

from bugnet_common import errors
from bugnet_common.bus.events import utcnow
from bugnet_common.openapi import Timestamp, Uuid

from .. import crypto, targets
from ..access import Access
from ..handlers import absolute_url
from ..models import ProjectRef
from ..settings import IntegrationsSettings
from ..views import iso
from . import providers
from .models import GitBugRef, GitIntegration, GitIssue
from .schemas import GitIntegrationIn, Provider, repository_problem

CLAIM_SECONDS = 120
ISSUES = GitIssue.__table__  # type: ignore[attr-defined]


def _hint(token: str) -> str:
    return "…" + token[-4:] if len(token) >= 8 else "…"


class GitIntegrationOut(TypedDict):
    provider: Provider
    repository: str
    base_url: Annotated[str | None, Field(description=(
        "A self-hosted instance's URL; null: the provider's public service."))]
    has_token: bool
    token_hint: Annotated[str, Field(description=(
        "The token's last characters; the token itself is never returned."))]
    created_at: Timestamp
    updated_at: Timestamp


class GitIssueOut(TypedDict):
    bug_id: Uuid
    provider: Provider
    repository: str
    url: Annotated[str | None, Field(description=(
        "The issue on the provider; null only while it is being created."))]
    number: int | None
    created_at: Timestamp


def integration_out(git: GitIntegration) -> GitIntegrationOut:
    """The settings as shown to members: never the token, only that there is one."""
    return {"provider": cast(Provider, git.provider), "repository": git.repository,
            "base_url": git.base_url, "has_token": True, "token_hint": git.token_hint,
            "created_at": iso(git.created_at), "updated_at": iso(git.updated_at)}


def issue_out(issue: GitIssue) -> GitIssueOut:
    return {"bug_id": issue.bug_id, "provider": cast(Provider, issue.provider),
            "repository": issue.repository, "url": issue.url, "number": issue.number, "created_at": iso(issue.created_at)}


def get_integration(*, session: Session, project: ProjectRef) -> GitIntegration:
    """The project's git settings; 404 when there are none."""
    git = session.get(GitIntegration, project.id)
    if git is None:
        raise errors.NotFound("No git integration is configured for this project")
    return git


def _check_base_url(url: str, settings: IntegrationsSettings) -> str:
    try:
        return targets.check_url(url, settings).url.rstrip("/")
    except targets.TargetRefused as exc:
        raise errors.ValidationFailed(f"Invalid 'base_url': {exc}",
                                      details={"base_url": str(exc)}) from None


def save_integration(*, session: Session, project: ProjectRef, data: GitIntegrationIn,
                     actor_id: str, settings: IntegrationsSettings) -> tuple[GitIntegration, bool]:
    """Set (or replace) the project's git settings; returns them and whether they are new."""
    problem = repository_problem(data.provider, data.repository)
    if problem is not None:
        raise errors.ValidationFailed(f"Invalid 'repository': {problem}",
                                      details={"repository": problem})
    base_url = _check_base_url(data.base_url, settings) if data.base_url else None
    now = utcnow()
    git = session.get(GitIntegration, project.id)
    created = git is None
    if git is None:
        git = GitIntegration(project_id=project.id, provider=data.provider, repository="",
                             token_encrypted="", token_hint="", created_by=actor_id,
                             created_at=now)
    git.provider = data.provider
    git.repository = data.repository
    git.base_url = base_url
    git.token_encrypted = crypto.encrypt(settings.secret(), data.token)
    git.token_hint = _hint(data.token)
    git.updated_at = now
    session.add(git)
    session.commit()
    return git, created


def delete_integration(*, session: Session, project: ProjectRef) -> GitIntegration:
    """Remove the project's git settings (issues already created stay linked)."""
    git = get_integration(session=session, project=project)
    session.delete(git)
    session.commit()
    return git


def find_bug(session: Session, project: ProjectRef, bug_id: str) -> GitBugRef:
    """The bug `bug_id` of `project`; 404 for a malformed id, an unknown bug or another
    project's bug."""
    bug = None
    try:
        key = str(uuid.UUID(bug_id))
    except ValueError:
        key = None
    if key is not None:
        bug = session.exec(select(GitBugRef).where(GitBugRef.id == key,
                                                   GitBugRef.project_id == project.id)).first()
    if bug is None:
        raise errors.NotFound("Bug not found")
    return bug


def get_issue(*, session: Session, project: ProjectRef, bug_id: str) -> GitIssue:
    """The issue created for the bug; 404 when there is none."""
    bug = find_bug(session, project, bug_id)
    issue = session.get(GitIssue, bug.id)
    if issue is None or issue.url is None:
        raise errors.NotFound("No issue has been created for this bug")
    return issue


def _cell(value: Any) -> str:
    """A markdown table cell: one line, no column breaks, no @-mentions."""
    text = " ".join(str(value).split()) if value not in (None, "") else "—"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("@", "&#64;")


def issue_draft(bug: GitBugRef, project: ProjectRef,
                settings: IntegrationsSettings) -> providers.IssueDraft:
    """The issue's title, body (the bug's fields and a link back) and labels."""
    link = absolute_url(settings, bug.url)
    rows = [("Bug", f"#{bug.number}"), ("Category", bug.category), ("Priority", bug.priority),
            ("Status", bug.status), ("Platform", bug.platform),
            ("Game version", bug.game_version), ("Source", bug.source),
            ("Reported", iso(bug.created_at))]
    lines = [f"Reported in **{_cell(project.name or project.slug)}** on Bugnet.", "",
             "| Field | Value |", "|---|---|"]
    lines += [f"| {name} | {_cell(value)} |" for name, value in rows]
    if link:
        lines += ["", f"[Open bug #{bug.number} in Bugnet]({link})"]
    title = " ".join(bug.title.split())[:255] or f"Bug #{bug.number}"
    return providers.IssueDraft(title=title, body="\n".join(lines) + "\n",
                                labels=[bug.category, f"priority: {bug.priority}"])


def _existing(issue: GitIssue) -> errors.Conflict:
    if issue.url is None:
        return errors.Conflict("An issue is being created for this bug")
    return errors.Conflict(f"This bug already has an issue: {issue.url}",
                           details={"url": issue.url, "number": issue.number})


def _claim(session: Session, git: GitIntegration, bug: GitBugRef, actor_id: str) -> GitIssue:
    """Reserve the bug's issue row (committed); 409 when it has one or one is in flight."""
    stale = utcnow() - timedelta(seconds=CLAIM_SECONDS)
    session.exec(sa.delete(ISSUES).where(  # type: ignore[call-overload]
        ISSUES.c.bug_id == bug.id, ISSUES.c.url.is_(None), ISSUES.c.created_at < stale))
    claimed = session.exec(pg_insert(ISSUES).values(  # type: ignore[call-overload]
        bug_id=bug.id, project_id=bug.project_id, provider=git.provider,
        repository=git.repository, url=None, number=None, created_by=actor_id,
        created_at=utcnow()).on_conflict_do_nothing().returning(ISSUES.c.bug_id)).first()
    issue = session.get(GitIssue, bug.id, populate_existing=True)
    session.commit()  # no transaction stays open during the provider call
    if claimed is None:
        if issue is None:  # completed and deleted in between: a rare race, ask to retry
            raise errors.Conflict("An issue is being created for this bug")
        raise _existing(issue)
    assert issue is not None
    return issue


def _release(session: Session, bug_id: str) -> None:
    session.rollback()
    session.exec(sa.delete(ISSUES).where(ISSUES.c.bug_id == bug_id,  # type: ignore[call-overload]
                                         ISSUES.c.url.is_(None)))
    session.commit()


def create_issue(*, session: Session, access: Access, bug_id: str,
                 settings: IntegrationsSettings) -> GitIssue:
    """Create the bug's issue on the project's provider, store and return the link."""
    bug = find_bug(session, access.project, bug_id)
    issue = session.get(GitIssue, bug.id)
    if issue is not None and issue.url is not None:
        raise _existing(issue)
    git = session.get(GitIntegration, access.project.id)
    if git is None:
        raise errors.Conflict("No git integration is configured for this project; "
                              "set one up at /integrations/git first")
    try:
        token = crypto.decrypt(settings.secret(), git.token_encrypted)
    except ValueError:
        raise errors.Conflict("The stored git token cannot be read (the service's secret key "
                              "changed); save the git integration again") from None
    if git.base_url is not None:
        try:  # resolved again now: the name may point elsewhere than when it was saved
            targets.check_url(git.base_url, settings)
        except targets.TargetRefused as exc:
            raise errors.Conflict(f"The git integration's base_url is refused: {exc}") from None
    draft = issue_draft(bug, access.project, settings)
    issue = _claim(session, git, bug, access.user_id)
    try:
        created = providers.create_issue(provider=git.provider, repository=git.repository,
                                         base_url=git.base_url, token=token, draft=draft,
                                         settings=settings)
    except BaseException:
        _release(session, bug.id)
        raise
    # An UPDATE, not a flush of `issue`: the bug (and its claim) may have been deleted meanwhile.
    session.exec(sa.update(ISSUES).where(ISSUES.c.bug_id == bug.id)  # type: ignore[call-overload]
                 .values(url=created.url, number=created.number))
    session.commit()
    session.expunge(issue)
    issue.url = created.url
    issue.number = created.number
    return issue
