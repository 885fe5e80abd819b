"""A fake GitHub REST API: `POST /repos/{owner}/{repo}/issues` as api.github.com answers it.

Known repositories and the one valid token are given at construction; a wrong or missing
`Authorization: Bearer` is 401 "Bad credentials", an unknown repository 404 "Not Found", an
issue without a title 422 "Validation Failed". Issues are numbered per repository from 1.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from fakes.base import Answer, FakeServer, Request

DOCS = "https://docs.github.com/rest"
ISSUES = re.compile(r"^(?P<prefix>.*)/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues$")


class FakeGitHub(FakeServer):
    def __init__(self, *, token: str, repos: list[str], web_url: str = "https://github.com",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token = token
        self.repos = set(repos)
        self.web_url = web_url
        self.issues: dict[str, list[dict[str, Any]]] = {r: [] for r in repos}
        self._ids = itertools.count(1_000_001)

    def handle(self, request: Request) -> Answer:
        match = ISSUES.match(request.path)
        if match is None or request.method != "POST":
            return Answer.of(404, {"message": "Not Found", "documentation_url": DOCS})
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Answer.of(401, {"message": "Bad credentials", "documentation_url": DOCS})
        repo = f"{match['owner']}/{match['repo']}"
        if repo not in self.repos:
            return Answer.of(404, {"message": "Not Found", "documentation_url": DOCS})
        try:
            doc = request.json()
        except ValueError:
            return Answer.of(400, {"message": "Problems parsing JSON", "documentation_url": DOCS})
        if not isinstance(doc, dict) or not doc.get("title"):
            return Answer.of(422, {"message": "Validation Failed", "documentation_url": DOCS,
                                   "errors": [{"resource": "Issue", "field": "title",
                                               "code": "missing_field"}]})
        number = len(self.issues[repo]) + 1
        issue_id = next(self._ids)
        issue = {
            "id": issue_id, "node_id": f"I_{issue_id}", "number": number,
            "url": f"http://{request.headers.get('host')}/repos/{repo}/issues/{number}",
            "html_url": f"{self.web_url}/{repo}/issues/{number}",
            "title": doc["title"], "body": doc.get("body"), "state": "open",
            "labels": [{"name": name} for name in doc.get("labels") or []],
            "user": {"login": "bugnet-bot"}, "created_at": "2026-11-28T12:00:00Z",
        }
        self.issues[repo].append(issue)
        return Answer.of(201, issue, Location=issue["url"])
