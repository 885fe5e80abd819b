"""Tables of the git area.

Invariants:
- `git_integrations`: at most one per project; the token is stored encrypted (crypto.py) and
  only its last four characters are kept in plain text, for display.
- `git_bug_refs` is a read model of bugs' bugs (bug_created/updated/resolved/regressed/
  deleted), holding the fields an issue is written from. Nothing else writes it; an upsert
  older than the row is skipped and a deleted bug leaves a tombstone (kind "bug").
- `git_issues`: at most one issue per bug (primary key `bug_id`). A row is written *before*
  the provider is called (`url` null: the claim) and completed or deleted after, so two
  concurrent requests cannot both create an issue.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field

from ..models import Base, _project_fk, _ts


class GitIntegration(Base, table=True):
    """The project's GitHub repository or GitLab project that issues are created in."""

    __tablename__ = "git_integrations"

    project_id: str = _project_fk(primary_key=True)
    provider: str = Field(max_length=16)  # github, gitlab
    repository: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # None: the provider's default API (settings.github_api_url / settings.gitlab_url).
    base_url: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    token_encrypted: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    token_hint: str = Field(max_length=16)
    created_by: str | None = Field(default=None, max_length=36)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class GitBugRef(Base, table=True):
    """Read model of a bug: what an issue is written from."""

    __tablename__ = "git_bug_refs"

    id: str = Field(primary_key=True, max_length=36)
    project_id: str = _project_fk()
    number: int
    title: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    category: str = Field(max_length=32)
    priority: str = Field(max_length=32)
    status: str = Field(max_length=32)
    source: str = Field(default="", max_length=32)
    platform: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    game_version: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    url: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime | None = _ts(nullable=True)
    # Time of the event the row reflects (out-of-order guard).
    updated_at: datetime = _ts()


class GitIssue(Base, table=True):
    """The issue created for a bug (one per bug)."""

    __tablename__ = "git_issues"

    bug_id: str = Field(sa_column=sa.Column(
        sa.String(36), sa.ForeignKey("git_bug_refs.id", ondelete="CASCADE"), primary_key=True))
    project_id: str = _project_fk()
    provider: str = Field(max_length=16)
    repository: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # Null while the provider call is in flight (the claim).
    url: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    number: int | None = None
    created_by: str | None = Field(default=None, max_length=36)
    created_at: datetime = _ts()
