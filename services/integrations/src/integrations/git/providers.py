"""The GitHub and GitLab REST calls that create an issue.

Every failure of the provider — an error status, a timeout, an unreachable host or a body
that is not an issue — becomes a 502 envelope (`BadGateway`) whose message tells the user
what to fix ("GitHub answered 401: check the token"). Redirects are not followed, and no
more than `MAX_RESPONSE_BYTES` of an answer are read.

A user-given `base_url` (a self-hosted GitLab or GitHub Enterprise) is a target like a
webhook's (targets.py): its name is resolved and checked at the call, and the request goes to
a checked address with the name as Host header and TLS SNI, so a DNS answer that changes
after the check (rebinding) cannot send the token elsewhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from bugnet_common import errors

from .. import targets
from ..settings import IntegrationsSettings

PROVIDERS = ("github", "gitlab")
PROVIDER_NAMES = {"github": "GitHub", "gitlab": "GitLab"}
MAX_RESPONSE_BYTES = 1024 * 1024
USER_AGENT = "Bugnet-Integrations"


@dataclass(frozen=True)
class IssueDraft:
    title: str
    body: str
    labels: list[str]


@dataclass(frozen=True)
class CreatedIssue:
    url: str
    number: int


def api_base(provider: str, base_url: str | None, settings: IntegrationsSettings) -> str:
    """The REST API root: GitHub's (or a GitHub Enterprise `…/api/v3` given as `base_url`),
    or a GitLab instance's `…/api/v4`."""
    if provider == "github":
        return (base_url or settings.github_api_url).rstrip("/")
    root = (base_url or settings.gitlab_url).rstrip("/")
    if root.endswith("/api/v4"):
        root = root[: -len("/api/v4")]
    return root + "/api/v4"


def issue_request(provider: str, repository: str, base: str, token: str,
                  draft: IssueDraft) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(url, headers, JSON body) of the provider's create-issue call."""
    if provider == "github":
        owner, name = repository.split("/", 1)
        url = f"{base}/repos/{quote(owner, safe='')}/{quote(name, safe='')}/issues"
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                   "X-GitHub-Api-Version": "2022-11-28", "User-Agent": USER_AGENT}
        return url, headers, {"title": draft.title, "body": draft.body, "labels": draft.labels}
    # GitLab: a project is named by its numeric id or its URL-encoded full path.
    url = f"{base}/projects/{quote(repository, safe='')}/issues"
    headers = {"PRIVATE-TOKEN": token, "Accept": "application/json", "User-Agent": USER_AGENT}
    return url, headers, {"title": draft.title, "description": draft.body,
                          "labels": ",".join(draft.labels)}


def _message(raw: bytes) -> str | None:
    """The error message of a GitHub/GitLab error body, when it has one."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    for key in ("message", "error_description", "error"):
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
        if isinstance(value, dict | list) and value:
            return json.dumps(value)[:200]
    return None


def _failure(name: str, repository: str, status: int, headers: httpx.Headers,
             raw: bytes) -> errors.BadGateway:
    detail = _message(raw)
    prefix = f"{name} answered {status}"
    if status == 401:
        text = f"{prefix}: check the token"
    elif status in (403, 429) and (headers.get("x-ratelimit-remaining") == "0"
                                   or status == 429 or "rate limit" in (detail or "").lower()):
        text = f"{prefix}: rate limit exceeded, try again later"
    elif status == 403:
        text = f"{prefix}: the token may not create issues in '{repository}'"
    elif status == 404:
        text = f"{prefix}: check the repository '{repository}' and that the token can access it"
    elif status == 410:
        text = f"{prefix}: issues are disabled in '{repository}'"
    elif status >= 500:
        text = f"{prefix}: the provider failed, try again later"
    else:
        text = prefix + (f": {detail}" if detail else "")
    return errors.BadGateway(text, details={"provider_status": status})


def _read(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _created(provider: str, raw: bytes) -> CreatedIssue | None:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    url = doc.get("html_url" if provider == "github" else "web_url")
    number = doc.get("number" if provider == "github" else "iid")
    if (not isinstance(url, str) or not url.startswith(("https://", "http://"))
            or isinstance(number, bool) or not isinstance(number, int) or number < 1):
        return None
    return CreatedIssue(url=url, number=number)


Attempt = tuple[str, dict[str, str], dict[str, Any]]  # url, headers, httpx extensions


def _pinned(name: str, url: str, headers: dict[str, str],
            settings: IntegrationsSettings) -> list[Attempt]:
    """The request to a user-given host, once per checked address of its name (now)."""
    try:
        target = targets.parse(url, settings)
        addresses = targets.resolve(target, settings)
    except targets.Unresolvable:
        raise errors.BadGateway(f"{name} could not be reached at {httpx.URL(url).host} "
                                "(the name does not resolve)") from None
    except targets.TargetRefused as exc:
        raise errors.Conflict(f"The git integration's base_url is refused: {exc}") from None
    extensions: dict[str, Any] = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return [(target.url_for(address), {**headers, "Host": target.host_header}, extensions)
            for address in addresses]


def create_issue(*, provider: str, repository: str, base_url: str | None, token: str,
                 draft: IssueDraft, settings: IntegrationsSettings) -> CreatedIssue:
    """Create the issue on the provider; BadGateway with a user-facing message on failure."""
    name = PROVIDER_NAMES[provider]
    base = api_base(provider, base_url, settings)
    url, headers, body = issue_request(provider, repository, base, token, draft)
    # The operator's provider URLs (settings) are trusted; a user's base_url is checked and
    # pinned to the checked addresses, each tried in turn until one connects.
    attempts: list[Attempt] = [(url, headers, {})]
    if base_url is not None:
        attempts = _pinned(name, url, headers, settings)
    timeout = settings.git_timeout_seconds
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            for i, (attempt_url, attempt_headers, extensions) in enumerate(attempts):
                try:
                    with client.stream("POST", attempt_url, headers=attempt_headers, json=body,
                                       extensions=extensions) as response:
                        raw = _read(response)
                    break
                except httpx.ConnectError:
                    if i == len(attempts) - 1:
                        raise
    except httpx.TimeoutException:
        raise errors.BadGateway(f"{name} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise errors.BadGateway(
            f"{name} could not be reached at {httpx.URL(base).host} "
            f"({type(exc).__name__})") from None
    if response.status_code >= 400:
        raise _failure(name, repository, response.status_code, response.headers, raw)
    created = _created(provider, raw) if response.status_code in (200, 201) else None
    if created is None:
        raise errors.BadGateway(
            f"{name} answered {response.status_code} without an issue (no URL and number)",
            details={"provider_status": response.status_code})
    return created
