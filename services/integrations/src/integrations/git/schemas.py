"""Request shapes of the git endpoints.

Repository formats: GitHub `owner/name`; GitLab a numeric project id or the project's full
path (`group/subgroup/project`). They depend on the provider, so `repository_problem` checks
them after the model has parsed the body.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

Provider = Literal["github", "gitlab"]

GITHUB_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
GITLAB_ID = re.compile(r"^[1-9][0-9]{0,18}$")
GITLAB_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")


class GitIntegrationIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    provider: Provider
    repository: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                 max_length=500)]
    token: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000,
                                            pattern=r"^\S+$")]
    base_url: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2048)] | None = None


def repository_problem(provider: str, repository: str) -> str | None:
    """Why `repository` is not a valid name for `provider`, or None."""
    if provider == "github":
        name = repository.split("/", 1)[-1]
        if not GITHUB_REPOSITORY.match(repository) or name in (".", ".."):
            return "must be 'owner/name' for GitHub"
        return None
    if GITLAB_ID.match(repository):
        return None
    segments = repository.split("/")
    if len(segments) < 2 or not all(GITLAB_SEGMENT.match(s) for s in segments):
        return "must be a project id or a path 'group/project' for GitLab"
    return None
