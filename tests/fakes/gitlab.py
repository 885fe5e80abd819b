"""A fake GitLab REST API: `POST /api/v4/projects/{id or url-encoded path}/issues` as
gitlab.com answers it.

Projects are known by full path (and get numeric ids from 101); the one valid token is sent as
`PRIVATE-TOKEN` (else 401 "401 Unauthorized"); an unknown project is 404 "404 Project Not
Found"; a missing title 400. Issues get `iid`s per project from 1 and a `web_url` on this
server.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from fakes.base import Answer, FakeServer, Request

ISSUES = re.compile(r"^/api/v4/projects/(?P<id>[^/]+)/issues$")


class FakeGitLab(FakeServer):
    def __init__(self, *, token: str, projects: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token = token
        self.ids = {path: 101 + i for i, path in enumerate(projects)}
        self.issues: dict[str, list[dict[str, Any]]] = {p: [] for p in projects}

    def _project(self, raw_id: str) -> str | None:
        ident = unquote(raw_id)
        if ident.isdigit():
            return next((p for p, i in self.ids.items() if i == int(ident)), None)
        return ident if ident in self.ids else None

    def handle(self, request: Request) -> Answer:
        match = ISSUES.match(request.path)
        if match is None or request.method != "POST":
            return Answer.of(404, {"error": "404 Not Found"})
        if request.headers.get("private-token") != self.token:
            return Answer.of(401, {"message": "401 Unauthorized"})
        path = self._project(match["id"])
        if path is None:
            return Answer.of(404, {"message": "404 Project Not Found"})
        doc = request.json() if request.body else {}
        if not isinstance(doc, dict) or not doc.get("title"):
            return Answer.of(400, {"error": "title is missing"})
        iid = len(self.issues[path]) + 1
        issue = {
            "id": 5000 + iid, "iid": iid, "project_id": self.ids[path], "title": doc["title"],
            "description": doc.get("description"), "state": "opened",
            "labels": [s for s in str(doc.get("labels") or "").split(",") if s],
            "web_url": f"{self.url}/{path}/-/issues/{iid}",
            "created_at": "2026-11-28T12:00:00.000Z",
        }
        self.issues[path].append(issue)
        return Answer.of(201, issue)
