"""The authorization matrix of every project-scoped route of every service, as data.

The bugs service's routes are tabled (and their cells played) by ``e2e.bugs_matrix``; this
module adds the analytics and integrations services' project routes, the per-user
notification routes and the SDK routes keyed by API key that the bugs table lacks, and the
machinery that plays them through Envoy:

- ``ROUTES``: each route with the permission the SPEC says it needs (§5 permission table,
  §6, §7; written out here, never read from the services, or the test could not fail), the
  ids its path needs, a valid body and a check of a successful answer.
- ``scoped_routes()``: what the route table (``bugnet_gateway.openapi.service_routes``, the
  source of the served OpenAPI document) says must be in a matrix: every operation whose path
  has ``{slug}``, the ``/api/notifications*`` and invitation routes, and every API-key route.
- ``MatrixEnv``: the bugs matrix's users and worlds, plus a member per denied permission,
  a member granted ``integrations.manage``, and in the main and the foreign project a
  webhook with a delivery, an alert, Discord/git/Steam settings, sessions, a perf snapshot,
  a regression, a notification -- every foreign row's id is kept to prove lists never show it.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from e2e import bugs_matrix as bm

# ---- what the spec says (independent of the services' code) ---------------------------------

MEMBER_DEFAULTS = bm.SPEC_ROLE_DEFAULTS["member"]
# Permissions routes of this table need; a member per permission is denied exactly it.
DENIED = ("analytics.view", "bugs.view", "bugs.edit", "integrations.manage")
# Permissions a member lacks by default that a route here needs; a member is granted it.
GRANTED = ("integrations.manage",)

PROJECT_ROLES = ("anonymous", "non_member", "member", "admin", "owner", "member_deny",
                 "member_grant")
USER_ROLES = ("anonymous", "user", "other_user")
SDK_ROLES = ("key", "foreign_key", "no_key", "bearer_only")


def user_key(kind: str, permission: str) -> str:
    return f"{kind}_{permission.replace('.', '_')}"


# ---- a fake provider: GitHub issues, webhook and Discord targets ------------------------------

class _Provider(BaseHTTPRequestHandler):
    issued = 0
    lock = threading.Lock()

    def _answer(self, status: int, doc: dict[str, Any]) -> None:
        raw = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with _Provider.lock:
            _Provider.issued += 1
            n = _Provider.issued
        self._answer(201, {"html_url": f"https://github.example/o/r/issues/{n}", "number": n})

    def do_GET(self) -> None:
        self._answer(200, {})

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def fake_provider() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# ---- the environment ------------------------------------------------------------------------------

CRASH = {"title": "Matrix crash in Renderer.Draw", "category": "crash", "priority": "high",
         "description": "NullReferenceException\n  at Renderer.Draw (Renderer.cs:42)"}


def wait_until(fn: Callable[[], bool], timeout: float = 30.0, what: str = "") -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.25)
    return fn()


class MatrixEnv(bm.Env):
    USERS = bm.Env.USERS + tuple(user_key("deny", p) for p in DENIED) + tuple(
        user_key("grant", p) for p in GRANTED) + ("foreign_member",)

    def __init__(self, clients: bm.Clients, provider: str) -> None:
        super().__init__(clients)
        self.provider = provider
        # per world name: ids of the rows this module made (webhook_id, alert_id...)
        self.rows: dict[str, dict[str, Any]] = {}
        self.timings: dict[str, float] = {}

    # -- small steps, as the world's owner --
    def owner_call(self, world: bm.World, method: str, rest: str, status: int | tuple[int, ...],
                   **kw: Any) -> dict[str, Any]:
        with self.clients.batch() as new:
            resp = new().request(method, world.url(rest), headers=world.owner.headers, **kw)
        wanted = (status,) if isinstance(status, int) else status
        assert resp.status_code in wanted, f"setup {method} {rest}: {resp.status_code} {resp.text[:300]}"
        body: dict[str, Any] = resp.json()
        return body

    def sdk(self, world: bm.World, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.clients.batch() as new:
            resp = new().post(path, json=body, headers={"X-API-Key": world.api_key})
        assert resp.status_code in (200, 201), f"setup {path}: {resp.status_code} {resp.text[:300]}"
        data: dict[str, Any] = resp.json()["data"]
        return data

    def git_body(self, tag: str = "") -> dict[str, Any]:
        return {"provider": "github", "repository": f"matrix/{tag or 'repo'}",
                "token": f"ghp_matrix{uuid.uuid4().hex}", "base_url": self.provider}

    def ensure(self, world: bm.World, what: str) -> None:
        """Discord, git or Steam settings exist in `world` (a DELETE cell may have removed them)."""
        with self.clients.batch() as new:
            resp = new().get(world.url(f"/integrations/{what}"), headers=world.owner.headers)
        if resp.status_code == 200:
            return
        self.owner_call(world, "POST", f"/integrations/{what}", (200, 201),
                        json=self.integration_body(what))

    def integration_body(self, what: str) -> dict[str, Any]:
        if what == "discord":
            # Only Discord's hosts are accepted (the test stack sets no other base URL); the
            # name does not resolve here, so nothing ever leaves the machine.
            return {"webhook_url": "https://discord.com/api/webhooks/1234567/matrix-token",
                    "events": ["bug_created"]}
        if what == "git":
            return self.git_body()
        return {"app_id": 440}

    def absent(self, world: bm.World, what: str) -> None:
        with self.clients.batch() as new:
            new().delete(world.url(f"/integrations/{what}"), headers=world.owner.headers)

    def new_webhook(self, world: bm.World, tag: str = "") -> str:
        data = self.owner_call(world, "POST", "/webhooks", 201, json={
            "url": f"{self.provider}/hook/{tag or 'main'}", "events": ["bug_created"]})["data"]
        return str(data["id"])

    def new_alert(self, world: bm.World, tag: str = "") -> str:
        data = self.owner_call(world, "POST", "/alerts", 201, json={
            "name": f"Matrix alert {tag or uuid.uuid4().hex[:6]}", "condition": "new_bug",
            "channels": ["in_app"]})["data"]
        return str(data["id"])

    def pool_bug(self, world: bm.World) -> str:
        pool: list[str] = self.rows[world.name]["bug_pool"]
        assert pool, "the pool of fresh bugs ran dry"
        return pool.pop()

    def furnish(self, world: bm.World, *, marker: str = "") -> None:
        """This module's rows in `world` (the bugs matrix seeded the rest)."""
        rows = self.rows.setdefault(world.name, {})
        version = f"1.0.0-{marker}" if marker else "1.0.0"
        newer = f"1.1.0-{marker}" if marker else "1.1.0"
        rows["version"] = version
        # Sessions of a release, a perf snapshot on a bug, a resolved bug to rate.
        for i in range(2):
            token = f"matrix-{world.slug}-{i}"
            self.sdk(world, "/sessions/start", {"session_token": token, "platform": "Windows",
                                                "game_version": version, "device_info": "GPU"})
        self.sdk(world, "/sessions/end", {"session_token": f"matrix-{world.slug}-0",
                                          "crashed": True})
        self.sdk(world, "/perf/snapshot", {"fps": 60, "frame_time_ms": 16.6,
                                           "memory_used_mb": 512, "game_version": version,
                                           "bug_report_id": world.shared["bug_id"]})
        with self.clients.batch() as new:
            resolved = self.new_bug(new(), world, title=f"{marker} Resolved door bug".strip())
        self.owner_call(world, "PATCH", f"/bugs/{resolved}", 200, json={"status": "resolved"})
        rows["resolved_bug_id"] = resolved
        # A recurrence regression: a fixed crash back in a newer version.
        crash = self.sdk(world, "/bugs/submit", {**CRASH, "title": f"{CRASH['title']} {marker}",
                                                 "game_version": version})["id"]
        self.owner_call(world, "PATCH", f"/bugs/{crash}", 200, json={"status": "resolved"})
        self.sdk(world, "/bugs/submit", {**CRASH, "title": f"{CRASH['title']} {marker}",
                                         "game_version": newer})
        # Integrations: a webhook with a delivery, an alert, Discord, git, Steam.
        rows["webhook_id"] = self.new_webhook(world, marker)
        delivery = self.owner_call(world, "POST", f"/webhooks/{rows['webhook_id']}/test", 200)
        rows["delivery_id"] = delivery["data"]["id"]
        rows["alert_id"] = self.new_alert(world, marker)
        # ...fired by a bug no member filed: the owner too is told (their own alert's id in
        # their notifications, which the `other_user` cells meet as the foreign owner's)
        self.sdk(world, "/bugs/submit", {"title": f"{marker} Fires the alert".strip(),
                                         "category": "ui", "game_version": version})
        for what in ("discord", "git", "steam"):
            self.ensure(world, what)
        # Fresh bugs for the git-issue cells (one issue per bug); the last one gets an issue
        # below, once the integrations service knows it.
        with self.clients.batch() as new:
            setup = new()
            rows["bug_pool"] = [self.new_bug(setup, world) for _ in range(8)]

    def notify(self, world: bm.World, assignee: bm.User, marker: str = "") -> None:
        """The owner assigns a bug to `assignee`: an in-app notification for them."""
        with self.clients.batch() as new:
            bug = self.new_bug(new(), world, title=f"{marker} Assigned to you".strip())
        self.owner_call(world, "PATCH", f"/bugs/{bug}", 200, json={"assignee": assignee.id})

    def build(self) -> None:
        started = time.monotonic()
        super().build()
        self.timings["bugs worlds"] = time.monotonic() - started
        main, foreign = self.worlds["main"], self.worlds["foreign"]
        with self.clients.batch() as new:
            setup = new()
            for p in DENIED:
                user = self.u(user_key("deny", p))
                self.join(setup, main, user, "member")
                self.set_overrides(setup, main, user, {p: False})
            for p in GRANTED:
                user = self.u(user_key("grant", p))
                self.join(setup, main, user, "member")
                self.set_overrides(setup, main, user, {p: True})
            self.join(setup, foreign, self.u("foreign_member"), "member")
        self.timings["members"] = time.monotonic() - started
        self.furnish(main)
        self.furnish(foreign, marker=self.marker)
        self.notify(main, self.u("member"))
        self.notify(foreign, self.u("foreign_member"), self.marker)
        self.timings["rows"] = time.monotonic() - started
        self.settle()
        self.timings["settled"] = time.monotonic() - started

    # -- waiting for the bus: the analytics and integrations read models --
    def settle(self) -> None:
        main = self.worlds["main"]
        with self.clients.batch() as new:
            api = new()

            # Members reach the analytics and integrations read models through the bus: wait
            # until both answer every member role as the spec says (the cells judge; this
            # only waits, and gives up quietly).
            probes = [r for r in ROUTES if r.method == "GET"
                      and r.path in (f"{P}/analytics", f"{P}/alerts")]
            for route in probes:
                for role in route.roles()[2:]:  # the members
                    headers = self.headers_for(actor_role(route, role))
                    want = expected(route, role)
                    wait_until(lambda h=headers, r=route, w=want: api.get(  # type: ignore[misc]
                        main.url(r.path.removeprefix(P)), headers=h).status_code in w)
                for p in DENIED:  # every denied member, on both services
                    headers = self.headers_for(f"deny:{p}")
                    want = (200,) if route.perm in MEMBER_DEFAULTS - {p} else (403,)
                    wait_until(lambda h=headers, r=route, w=want: api.get(  # type: ignore[misc]
                        main.url(r.path.removeprefix(P)), headers=h).status_code in w)
            for world in (main, self.worlds["foreign"]):
                self._settle_world(api, world)
            for key in ("member", "foreign_member"):
                user = self.u(key)
                wait_until(lambda u=user: bool(api.get(  # type: ignore[misc]
                    "/notifications", headers=u.headers).json().get("data")))
                notes = api.get("/notifications", headers=user.headers).json().get("data") or [{}]
                self.rows.setdefault("notes", {})[key] = notes[0].get("id", str(uuid.uuid4()))

    def _settle_world(self, api: httpx.Client, world: bm.World) -> None:
        rows, owner = self.rows[world.name], world.owner.headers

        def status(rest: str) -> int:
            return api.get(world.url(rest), headers=owner).status_code

        wait_until(lambda: status(f"/analytics/releases/{rows['version']}") == 200)
        wait_until(lambda: status(f"/bugs/{world.shared['bug_id']}/performance") == 200)
        wait_until(lambda: bool(api.get(world.url("/regressions"), headers=owner)
                                .json().get("data")))
        regressions = api.get(world.url("/regressions"), headers=owner).json().get("data")
        rows["regression_id"] = (regressions or [{}])[0].get("id", str(uuid.uuid4()))
        # the newest pool bug gets an issue: once integrations knows it, it knows the others
        issued = rows["issue_bug_id"] = rows["bug_pool"].pop()
        wait_until(lambda: api.post(world.url(f"/bugs/{issued}/git-issue"),
                                    headers=owner).status_code in (201, 409))
        wait_until(lambda: self.satisfiable(world))

    def satisfiable(self, world: bm.World) -> bool:
        """Analytics knows the resolved bug (a rating is accepted)."""
        with self.clients.batch() as new:
            resp = new().post("/satisfaction", headers={"X-API-Key": world.api_key}, json={
                "bug_id": self.rows[world.name]["resolved_bug_id"], "rating": 4,
                "steam_id": "765611"})
        return resp.status_code == 201

    # -- who plays a role (in the main world) --
    def headers_for(self, role: str) -> dict[str, str]:
        main = self.worlds["main"]
        if role.startswith(("deny:", "grant:")):
            kind, permission = role.split(":")
            return self.u(user_key(kind, permission)).headers
        direct = {"user": "member", "other_user": "outsider", "non_member": "outsider",
                  "member": "member", "admin": "admin"}
        if role in direct:
            return self.u(direct[role]).headers
        if role in ("owner", "bearer_only"):
            return main.owner.headers
        if role == "key":
            return {"X-API-Key": main.api_key}
        if role == "foreign_key":
            return {"X-API-Key": self.worlds["foreign"].api_key}
        return {}

    def row_ids(self, world: str, member: str) -> set[str]:
        """Ids of `world`'s rows and of its `member`'s notification."""
        w = self.rows[self.worlds[world].name]
        return {w["webhook_id"], w["delivery_id"], w["alert_id"], w["regression_id"],
                self.rows["notes"][member]}

    def foreign_row_ids(self) -> set[str]:
        """Ids of the foreign project's (and its member's) rows that no list here may show."""
        return self.row_ids("foreign", "foreign_member")


# ---- the table ------------------------------------------------------------------------------------

@dataclass
class Cell:
    env: MatrixEnv
    route: Route
    role: str
    new: Callable[[], httpx.Client]
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def world(self) -> bm.World:
        return self.env.worlds["main"]

    @property
    def rows(self) -> dict[str, Any]:
        return self.env.rows[self.world.name]


IdsFactory = Callable[[Cell], dict[str, str]]
SendFactory = Callable[[Cell], dict[str, Any]]
Check = Callable[[Cell, httpx.Response], str | None]


@dataclass(frozen=True)
class Route:
    family: str
    method: str
    path: str  # the Flask rule after /api
    kind: str  # "perm" (a project permission), "user" (any signed-in user, own rows), "sdk"
    perm: str = ""
    ok: tuple[int, ...] = (200,)
    ids: IdsFactory | None = None
    send: SendFactory | None = None
    check: Check | None = None
    sdk: tuple[tuple[str, int], ...] = ()  # kind "sdk": the status per SDK role
    other_user: int = 200  # kind "user": what another user gets

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def roles(self) -> tuple[str, ...]:
        if self.kind == "sdk":
            return SDK_ROLES
        if self.kind == "user":
            return USER_ROLES
        if self.perm in MEMBER_DEFAULTS:
            return PROJECT_ROLES[:-1]  # granting what a member has proves nothing
        return PROJECT_ROLES


def actor_role(route: Route, role: str) -> str:
    """The user playing `role`: deny/grant cells are the members overriding this permission."""
    if role == "member_deny":
        return f"deny:{route.perm}"
    if role == "member_grant":
        return f"grant:{route.perm}"
    return role


def expected(route: Route, role: str) -> tuple[int, ...]:
    if route.kind == "sdk":
        return (dict(route.sdk)[role],)
    if role == "anonymous":
        return (401,)  # the gateway refuses a bearer route without a token
    if route.kind == "user":
        return route.ok if role == "user" else (route.other_user,)
    if role == "non_member":
        return (404,)
    spec_role = {"member_deny": "member", "member_grant": "member"}.get(role, role)
    perms = set(bm.SPEC_ROLE_DEFAULTS[spec_role])
    if role == "member_deny":
        perms.discard(route.perm)
    if role == "member_grant":
        perms.add(route.perm)
    return route.ok if route.perm in perms else (403,)


def rows(*names: str, **renamed: str) -> IdsFactory:
    """Ids of the main world's rows made by this module; `bug_id="issue_bug_id"` renames."""
    wanted = dict(zip(names, names, strict=True)) | renamed
    return lambda c: {param: str(c.rows[name]) for param, name in wanted.items()}


def shared_bug(c: Cell) -> dict[str, str]:
    return {"bug_id": c.world.shared["bug_id"]}


def fresh_webhook(c: Cell) -> dict[str, str]:
    return {"webhook_id": c.env.new_webhook(c.world)}


def fresh_alert(c: Cell) -> dict[str, str]:
    return {"alert_id": c.env.new_alert(c.world)}


def webhook_delivery(c: Cell) -> dict[str, str]:
    return {"webhook_id": c.rows["webhook_id"], "delivery_id": c.rows["delivery_id"]}


def ensured(what: str) -> IdsFactory:
    def make(c: Cell) -> dict[str, str]:
        c.env.ensure(c.world, what)
        return {}
    return make


def absent(what: str) -> IdsFactory:
    def make(c: Cell) -> dict[str, str]:
        if c.role in ("owner", "admin", "member_grant"):
            c.env.absent(c.world, what)  # the create answers 201, not a replacement's 200
        return {}
    return make


def pool_bug(c: Cell) -> dict[str, str]:
    c.env.ensure(c.world, "git")
    allowed = expected(c.route, c.role)[0] < 400
    return {"bug_id": c.env.pool_bug(c.world) if allowed else c.world.shared["bug_id"]}


def my_note(c: Cell) -> dict[str, str]:
    return {"notification_id": c.env.rows["notes"]["member"]}


def js(body: Any) -> SendFactory:
    return lambda c: {"json": body() if callable(body) else body}


def no_foreign_rows(c: Cell, resp: httpx.Response) -> str | None:
    """No row of a project (or user) other than the caller's is in the answer. The
    `other_user` is the foreign project's owner: its rows (say, its alert's firings in their
    notifications) are theirs, and the main project's and its member's are foreign to them."""
    text = resp.text.lower()
    if c.role == "other_user":
        theirs, marker = c.env.row_ids("main", "member"), None
    else:
        theirs, marker = c.env.foreign_row_ids(), c.env.marker
    leaked = sorted(i for i in theirs if i.lower() in text)
    if leaked or (marker and marker in text):
        return f"another project's or user's rows are in this answer: {leaked or marker}"
    return None


def lists_own_notification(c: Cell, resp: httpx.Response) -> str | None:
    problem = no_foreign_rows(c, resp)
    if problem is None and c.role == "user":
        ids = [n["id"] for n in resp.json()["data"]]
        if c.env.rows["notes"]["member"] not in ids:
            return "the user's own notification is missing"
    return problem


def rating_body(c: Cell) -> dict[str, Any]:
    return {"json": {"bug_id": c.rows["resolved_bug_id"], "rating": 5,
                     "steam_id": f"7656{uuid.uuid4().int % 10**9}"}}


def session_body(c: Cell) -> dict[str, Any]:
    return {"json": {"session_token": f"matrix-cell-{uuid.uuid4().hex}", "platform": "Linux",
                     "game_version": "1.0.0", "crashed": False}}


def sdk(key: int, foreign_key: int | None = None) -> tuple[tuple[str, int], ...]:
    """An SDK route: the project's key passes; another project's key authenticates that other
    project (so `foreign_key` is what that project gets); no key and a bearer token alone: 401."""
    return (("key", key), ("foreign_key", key if foreign_key is None else foreign_key),
            ("no_key", 401), ("bearer_only", 401))


P = "/projects/<slug>"
AV, BV, BE, IM = "analytics.view", "bugs.view", "bugs.edit", "integrations.manage"
DISCORD, GIT, STEAM = f"{P}/integrations/discord", f"{P}/integrations/git", f"{P}/integrations/steam"
CREATED_OR_REPLACED = (201, 200)

ROUTES: list[Route] = [
    # -- analytics (§6) --
    Route("analytics", "GET", f"{P}/analytics", "perm", AV),
    Route("analytics", "GET", f"{P}/analytics/crashes", "perm", AV, check=no_foreign_rows),
    Route("analytics", "GET", f"{P}/analytics/releases", "perm", AV, check=no_foreign_rows),
    Route("analytics", "GET", f"{P}/analytics/releases/<path:version>", "perm", AV,
          ids=rows("version")),
    Route("analytics", "GET", f"{P}/analytics/performance", "perm", AV, check=no_foreign_rows),
    Route("analytics", "GET", f"{P}/analytics/satisfaction", "perm", AV, check=no_foreign_rows),
    Route("analytics", "GET", f"{P}/analytics/api-usage", "perm", AV),
    Route("analytics", "GET", f"{P}/bugs/<bug_id>/performance", "perm", BV, ids=shared_bug,
          check=no_foreign_rows),
    Route("regressions", "GET", f"{P}/regressions", "perm", AV, check=no_foreign_rows),
    Route("regressions", "POST", f"{P}/regressions/detect", "perm", AV, check=no_foreign_rows),
    Route("regressions", "PATCH", f"{P}/regressions/<regression_id>", "perm", BE,
          ids=rows("regression_id"), send=js({"status": "confirmed"})),
    Route("regressions", "PUT", f"{P}/regressions/<regression_id>", "perm", BE,
          ids=rows("regression_id"), send=js({"status": "confirmed"})),

    # -- webhooks (§7) --
    Route("webhooks", "GET", f"{P}/webhooks", "perm", IM, check=no_foreign_rows),
    Route("webhooks", "POST", f"{P}/webhooks", "perm", IM, ok=(201,),
          send=lambda c: {"json": {"url": f"{c.env.provider}/hook/new", "events": ["bug_created"]}}),
    Route("webhooks", "GET", f"{P}/webhooks/<webhook_id>", "perm", IM, ids=rows("webhook_id")),
    Route("webhooks", "PATCH", f"{P}/webhooks/<webhook_id>", "perm", IM,
          ids=rows("webhook_id"), send=js({"events": ["bug_created", "bug_updated"]})),
    Route("webhooks", "PUT", f"{P}/webhooks/<webhook_id>", "perm", IM,
          ids=rows("webhook_id"), send=js({"events": ["bug_created"]})),
    Route("webhooks", "DELETE", f"{P}/webhooks/<webhook_id>", "perm", IM, ids=fresh_webhook),
    Route("webhooks", "POST", f"{P}/webhooks/<webhook_id>/test", "perm", IM,
          ids=rows("webhook_id")),
    Route("webhooks", "GET", f"{P}/webhooks/<webhook_id>/deliveries", "perm", IM,
          ids=rows("webhook_id"), check=no_foreign_rows),
    Route("webhooks", "GET", f"{P}/webhooks/<webhook_id>/deliveries/<delivery_id>", "perm", IM,
          ids=webhook_delivery),

    # -- alerts (§7; the firings log is the alert's, so the same permission) --
    Route("alerts", "GET", f"{P}/alerts", "perm", IM, check=no_foreign_rows),
    Route("alerts", "POST", f"{P}/alerts", "perm", IM, ok=(201,),
          send=js(lambda: {"name": f"Cell alert {uuid.uuid4().hex[:6]}",
                           "condition": "crash_spike", "channels": ["in_app"]})),
    Route("alerts", "GET", f"{P}/alerts/<alert_id>", "perm", IM, ids=rows("alert_id")),
    Route("alerts", "PATCH", f"{P}/alerts/<alert_id>", "perm", IM, ids=rows("alert_id"),
          send=js({"window_minutes": 30})),
    Route("alerts", "PUT", f"{P}/alerts/<alert_id>", "perm", IM, ids=rows("alert_id"),
          send=js({"window_minutes": 45})),
    Route("alerts", "DELETE", f"{P}/alerts/<alert_id>", "perm", IM, ids=fresh_alert),
    Route("alerts", "GET", f"{P}/alerts/<alert_id>/firings", "perm", IM, ids=rows("alert_id"),
          check=no_foreign_rows),

    # -- Discord, git, Steam (§7) --
    Route("discord", "GET", DISCORD, "perm", IM, ids=ensured("discord")),
    Route("discord", "POST", DISCORD, "perm", IM, ok=(201,), ids=absent("discord"),
          send=lambda c: {"json": c.env.integration_body("discord")}),
    Route("discord", "PUT", DISCORD, "perm", IM, ok=CREATED_OR_REPLACED,
          send=lambda c: {"json": c.env.integration_body("discord")}),
    Route("discord", "PATCH", DISCORD, "perm", IM, ids=ensured("discord"),
          send=js({"enabled": True})),
    Route("discord", "DELETE", DISCORD, "perm", IM, ids=ensured("discord")),
    Route("discord", "POST", f"{DISCORD}/test", "perm", IM, ids=ensured("discord")),
    Route("git", "GET", GIT, "perm", IM, ids=ensured("git")),
    Route("git", "POST", GIT, "perm", IM, ok=(201,), ids=absent("git"),
          send=lambda c: {"json": c.env.git_body()}),
    Route("git", "DELETE", GIT, "perm", IM, ids=ensured("git")),
    # spec: bugs.edit creates the issue; reading a bug's issue is reading the bug (decided)
    Route("git", "GET", f"{P}/bugs/<bug_id>/git-issue", "perm", BV, ids=rows(bug_id="issue_bug_id")),
    Route("git", "POST", f"{P}/bugs/<bug_id>/git-issue", "perm", BE, ok=(201,), ids=pool_bug),
    Route("steam", "GET", STEAM, "perm", IM, ids=ensured("steam")),
    Route("steam", "POST", STEAM, "perm", IM, ok=(201,), ids=absent("steam"),
          send=js({"app_id": 440})),
    Route("steam", "PATCH", STEAM, "perm", IM, ids=ensured("steam"), send=js({"app_id": 570})),
    Route("steam", "PUT", STEAM, "perm", IM, ids=ensured("steam"), send=js({"app_id": 440})),
    Route("steam", "DELETE", STEAM, "perm", IM, ids=ensured("steam")),
    # the Steam store is not reachable from the test stack: an authorized sync gets the 502
    # of a provider that failed, which only a caller who passed authorization can see.
    Route("steam", "POST", f"{STEAM}/sync", "perm", IM, ok=(200, 502), ids=ensured("steam")),
    Route("steam", "GET", f"{STEAM}/dashboard", "perm", AV, ids=ensured("steam"),
          check=no_foreign_rows),

    # -- notifications (§7): any signed-in user, their own rows only --
    Route("notifications", "GET", "/notifications", "user", check=lists_own_notification),
    Route("notifications", "POST", "/notifications/<notification_id>/read", "user",
          ids=my_note, other_user=404),
    Route("notifications", "POST", "/notifications/read-all", "user"),
    Route("notifications", "GET", "/notifications/preferences", "user"),
    Route("notifications", "PUT", "/notifications/preferences", "user",
          send=js({"in_app": {"bug_assigned": True}})),
    Route("notifications", "PATCH", "/notifications/preferences", "user",
          send=js({"in_app": {"bug_assigned": True}})),

    # -- SDK routes of the analytics service (§6, §8) --
    Route("analytics-sdk", "POST", "/sessions/start", "sdk", sdk=sdk(201), send=session_body),
    Route("analytics-sdk", "POST", "/sessions/end", "sdk", sdk=sdk(200), send=session_body),
    Route("analytics-sdk", "POST", "/perf/snapshot", "sdk", sdk=sdk(201),
          send=js({"fps": 30, "frame_time_ms": 33.3, "memory_used_mb": 256})),
    # another project's key cannot rate this project's bug
    Route("analytics-sdk", "POST", "/satisfaction", "sdk", sdk=sdk(201, 404), send=rating_body),
]


# ---- coverage: what the route table says must be in a matrix --------------------------------

_PARAM = re.compile(r"<(?:[a-z]+(?:\([^)]*\))?:)?(\w+)>")


def openapi_path(flask_path: str) -> str:
    return "/api" + _PARAM.sub(r"{\1}", flask_path)


def scoped_routes() -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every project-scoped, per-user or API-key route served."""
    from bugnet_gateway.openapi import service_routes

    out = set()
    for r in service_routes():
        if ("{slug}" in r.path or r.path.startswith(("/api/notifications", "/api/invitations"))
                or (r.operation is not None and r.operation.auth == "api_key")):
            out.add((r.method, r.path))
    return out


def tabled_routes() -> set[tuple[str, str]]:
    return ({(r.method, openapi_path(r.path)) for r in bm.ROUTES}
            | {(r.method, openapi_path(r.path)) for r in ROUTES})


# ---- playing a cell --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    route: Route
    role: str
    expected: tuple[int, ...]
    actual: int
    problem: str | None

    @property
    def row(self) -> str:
        return self.route.label


def fill(path: str, ids: dict[str, str]) -> str:
    return _PARAM.sub(lambda m: ids[m.group(1)], path)


def judge(resp: httpx.Response, want: tuple[int, ...], cell: Cell) -> str | None:
    route = cell.route
    if resp.status_code not in want:
        return f"expected {'/'.join(map(str, want))}, got {resp.status_code}: {resp.text[:160]}"
    if not resp.headers.get("content-type", "").startswith("application/json"):
        return f"not JSON: {resp.headers.get('content-type')}"
    body = resp.json()
    if resp.status_code >= 400:
        error = body.get("error")
        if body.get("ok") is not False or not isinstance(error, str) or not error:
            return f"not an error envelope: {resp.text[:160]}"
        if error.startswith(bm.GATEWAY_404):
            return "Envoy does not route this path"
        if resp.status_code == 401 and route.kind != "sdk" and not error.startswith(bm.GATEWAY_401):
            return f"the 401 did not come from the gateway: {error!r}"
        return None
    if body.get("ok") is not True or "data" not in body:
        return f"not a success envelope: {resp.text[:160]}"
    return route.check(cell, resp) if route.check else None


def same_as_unknown_project(cell: Cell, resp: httpx.Response, kwargs: dict[str, Any],
                            headers: dict[str, str]) -> str | None:
    """Outside the project, an existing project answers exactly as an unknown one."""
    ghost = fill(cell.route.path, cell.ids | {"slug": f"ghost-{uuid.uuid4().hex[:10]}"})
    other = cell.new().request(cell.route.method, ghost, headers=headers, **kwargs)
    if (other.status_code != resp.status_code
            or other.json().get("error") != resp.json().get("error")):
        return (f"differs from an unknown project's answer: {resp.status_code} "
                f"{resp.text[:100]} vs {other.status_code} {other.text[:100]}")
    return None


def play(env: MatrixEnv, route: Route, role: str) -> Outcome:
    with env.clients.batch() as new:
        cell = Cell(env=env, route=route, role=role, new=new)
        cell.ids = {"slug": cell.world.slug} | (route.ids(cell) if route.ids else {})
        kwargs = route.send(cell) if route.send else {}
        headers = env.headers_for(actor_role(route, role))
        want = expected(route, role)
        resp = new().request(route.method, fill(route.path, cell.ids), headers=headers, **kwargs)
        problem = judge(resp, want, cell)
        if (problem is None and "<slug>" in route.path
                and role in ("anonymous", "non_member")):
            problem = same_as_unknown_project(cell, resp, kwargs, headers)
    return Outcome(route=route, role=role, expected=want, actual=resp.status_code,
                   problem=problem)


def play_routes(env: MatrixEnv, routes: list[Route]) -> list[Outcome]:
    return [play(env, route, role) for route in routes for role in route.roles()]


def sample(routes: list[Any]) -> list[Any]:
    """One route per family: the first GET when there is one (cheap and repeatable)."""
    picked: dict[str, Any] = {}
    for r in routes:
        if r.family not in picked or (picked[r.family].method != "GET" and r.method == "GET"):
            picked[r.family] = r
    return list(picked.values())


def summary(outcomes: list[Outcome]) -> str:
    return bm.summary(outcomes, expected=lambda o: o.expected[0])
