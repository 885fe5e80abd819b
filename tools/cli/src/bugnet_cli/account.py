"""Signing in and making sure a project exists: the steps `init` and `demo` share.

Both are idempotent: a second run with the same email and password logs in to the account
the first one created, and finds the project by its slug among the caller's projects instead
of creating another one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from .client import Api, ApiError, CliError


@dataclass(frozen=True)
class Account:
    user: dict[str, Any]
    token: str
    created: bool  # signed up now (else logged in to an existing account)


@dataclass(frozen=True)
class ProjectResult:
    project: dict[str, Any]
    created: bool
    api_key: str | None  # in full when created or regenerated now, else None
    masked_key: str | None


def slugify(name: str) -> str:
    """The slug the bugs service derives from a name (bugs.projects.service.slugify)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:64].strip("-")
    return slug if len(slug) >= 3 else (slug + "-project" if slug else "project")


SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,62})[a-z0-9]$")


def check_slug(slug: str) -> str:
    if not SLUG.match(slug) or "--" in slug:
        raise CliError(f"'{slug}' is not a valid slug: 3-64 lowercase letters, digits and "
                       "single hyphens")
    return slug


def display_name_for(email: str) -> str:
    local = email.split("@", 1)[0]
    words = [w for w in re.split(r"[._+\-]+", local) if w]
    return " ".join(w.capitalize() for w in words) or "Bugnet user"


def sign_in(api: Api, *, email: str, password: str, display_name: str | None) -> Account:
    """Sign up; when the email is taken, log in with the same password instead."""
    try:
        data = api.request("POST", "/auth/signup", json={
            "email": email, "password": password,
            "display_name": display_name or display_name_for(email)})
        created = True
    except ApiError as exc:
        if exc.status == 400:
            raise CliError(f"sign-up refused: {_describe(exc)}") from None
        if exc.status != 409:
            raise
        try:
            data = api.request("POST", "/auth/login", json={"email": email,
                                                            "password": password})
        except ApiError as login_exc:
            if login_exc.status == 401:
                raise CliError(
                    f"an account with {email} already exists and this password does not match "
                    f"it ({login_exc.message}); pass the account's password, or another --email"
                ) from None
            raise
        created = False
    api.token = data["token"]
    return Account(user=data["user"], token=data["token"], created=created)


def find_project(api: Api, slug: str) -> dict[str, Any] | None:
    """The caller's project with this slug, or None (also when it belongs to someone else)."""
    for project in api.list_all("/projects"):
        if project.get("slug") == slug:
            return project
    return None


def ensure_project(api: Api, *, name: str, slug: str, description: str | None = None,
                   regenerate_key: bool = False) -> ProjectResult:
    """The caller's project `slug`, created with a fresh API key when it does not exist."""
    existing = find_project(api, slug)
    if existing is None:
        body: dict[str, Any] = {"name": name, "slug": slug}
        if description is not None:
            body["description"] = description
        try:
            created = api.request("POST", "/projects", json=body, bearer=True)
        except ApiError as exc:
            if exc.status == 409:
                raise CliError(f"the slug '{slug}' is taken by a project this account is not a "
                               "member of; choose another with --slug") from None
            if exc.status == 400:
                raise CliError(f"project refused: {_describe(exc)}") from None
            raise
        key = created.get("api_key")
        return ProjectResult(project=created, created=True, api_key=key, masked_key=mask(key))
    if regenerate_key:
        data = api.request("POST", f"/projects/{slug}/api-key/regenerate", bearer=True)
        return ProjectResult(project=existing, created=False, api_key=data["api_key"],
                             masked_key=mask(data["api_key"]))
    masked: str | None = None
    try:
        masked = api.request("GET", f"/projects/{slug}/api-key", bearer=True).get("api_key")
    except ApiError as exc:
        if exc.status not in (403, 404):
            raise
    return ProjectResult(project=existing, created=False, api_key=None, masked_key=masked)


def mask(key: str | None) -> str | None:
    if not key:
        return None
    return f"{key[:8]}…{key[-4:]}"


def _describe(exc: ApiError) -> str:
    details = exc.details
    if isinstance(details, dict) and details:
        fields = "; ".join(f"{k}: {v}" for k, v in details.items())
        return f"{exc.message} ({fields})"
    return exc.message
