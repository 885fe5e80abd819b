"""The bugs service's authorization matrix as data, and the machinery that plays it through Envoy.

- ``ROUTES``: every route the bugs service serves (checked against its Flask ``url_map`` by
  the test module), each with the rule that authorizes it (spec §5), factories for the ids its
  path needs and for a valid body, and an optional check of a successful answer.
- Roles: who calls. Project routes are played by ``PROJECT_ROLES``; SDK routes and the
  invitation accept have their own roles and explicit expectations.
- ``expected()`` derives each cell's status from the spec's permission table
  (``SPEC_ROLE_DEFAULTS``, written out here independently of the service's own copy).
- ``Env`` holds the signed-up users, the long-lived projects ("worlds") and a factory of
  clients bound to fresh loopback addresses (127.77.x.y; the shared e2e fixtures use 127.0.x.y),
  so no cell drains another's rate-limit bucket.
"""

from __future__ import annotations

import base64
import itertools
import re
import struct
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from e2e.support import PASSWORD, auth

# ---- the spec's permission table (§5, "Team and permissions") -------------------------------

SPEC_PERMISSIONS: tuple[str, ...] = (
    "bugs.view", "bugs.create", "bugs.edit", "bugs.assign", "bugs.delete",
    "comments.create", "comments.internal", "labels.manage", "team.view", "team.manage",
    "settings.manage", "api_key.manage", "integrations.manage", "analytics.view",
    "changelogs.manage", "project.delete",
)
SPEC_ROLE_DEFAULTS: dict[str, frozenset[str]] = {
    # owner: everything; admin: everything but project.delete; member: view, create, edit and
    # assign bugs, comment, internal comments, view analytics and team.
    "owner": frozenset(SPEC_PERMISSIONS),
    "admin": frozenset(SPEC_PERMISSIONS) - {"project.delete"},
    "member": frozenset({"bugs.view", "bugs.create", "bugs.edit", "bugs.assign",
                         "comments.create", "comments.internal", "analytics.view",
                         "team.view"}),
}

# ---- roles ----------------------------------------------------------------------------------

# member_deny: a member whose override denies exactly the route's permission (every member
# permission on routes that need membership only); member_grant: a member whose override grants
# the route's permission (team.manage on routes nobody but the owner passes).
PROJECT_ROLES: tuple[str, ...] = ("anonymous", "non_member", "member", "admin", "owner",
                                  "member_deny", "member_grant")
SDK_ROLES: tuple[str, ...] = ("key", "foreign_key", "no_key", "bearer_only")
INVITE_ROLES: tuple[str, ...] = ("anonymous", "other_user", "invitee")
PROJECT_ROLE_OF = {"member": "member", "admin": "admin", "owner": "owner",
                   "member_deny": "member", "member_grant": "member"}
MEMBER_ROLES = frozenset(PROJECT_ROLE_OF)


@dataclass(frozen=True)
class Rule:
    """How a route is authorized.

    kind: ``perm`` (membership and every permission in ``perms``), ``member`` (membership
    only), ``nobody`` (no member passes, see ``special``), ``bearer`` (any signed-in user),
    ``public`` (anyone, when the project's tracker is enabled; 404 otherwise), ``upvote``
    (members on any bug; anyone on a public bug of an enabled tracker), ``explicit`` (a status
    per role in ``special``).
    ``special`` pins a role's status where the spec documents something else than the
    permission rule gives (a 409 conflict, a 400 the owner gets, an owner-only action).
    """

    kind: str
    perms: tuple[str, ...] = ()
    deny: str | None = None
    grant: tuple[str, ...] = ()
    special: tuple[tuple[str, int], ...] = ()

    @property
    def label(self) -> str:
        if self.kind == "perm":
            return "+".join(self.perms)
        return self.kind

    def deny_set(self) -> frozenset[str]:
        if self.kind == "perm":
            return frozenset({self.deny or self.perms[-1]})
        return SPEC_ROLE_DEFAULTS["member"]

    def grant_set(self) -> frozenset[str]:
        if self.grant:
            return frozenset(self.grant)
        if self.kind == "perm":
            return frozenset(self.perms)
        return frozenset({"labels.manage"})


def perm(*perms: str, deny: str | None = None, **special: int) -> Rule:
    return Rule("perm", perms=perms, deny=deny, special=tuple(special.items()))


def member(**special: int) -> Rule:
    return Rule("member", special=tuple(special.items()))


def nobody(grant: tuple[str, ...] = ("team.manage",), **special: int) -> Rule:
    return Rule("nobody", grant=grant, special=tuple(special.items()))


def explicit(**statuses: int) -> Rule:
    return Rule("explicit", special=tuple(statuses.items()))


BEARER = Rule("bearer")
PUBLIC = Rule("public")
UPVOTE = Rule("upvote")


def overrides_for(rule: Rule, role: str) -> dict[str, bool]:
    if role == "member_deny":
        return dict.fromkeys(sorted(rule.deny_set()), False)
    if role == "member_grant":
        return dict.fromkeys(sorted(rule.grant_set()), True)
    return {}


def effective(rule: Rule, role: str) -> frozenset[str]:
    """The actor's permissions per the spec: the role's defaults with the cell's overrides."""
    base = SPEC_ROLE_DEFAULTS[PROJECT_ROLE_OF[role]]
    ov = overrides_for(rule, role)
    return frozenset((base | {p for p, on in ov.items() if on}) - {p for p, on in ov.items() if not on})


# ---- users, worlds, clients ------------------------------------------------------------------

@dataclass(frozen=True)
class User:
    key: str
    id: str
    email: str
    token: str
    display_name: str

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.token)


@dataclass
class World:
    """One project with its owner, its members and the objects routes read."""

    name: str
    slug: str
    id: str
    api_key: str
    owner: User
    roles: dict[str, str]  # user id -> role
    tracker_enabled: bool = False
    shared: dict[str, Any] = field(default_factory=dict)

    def url(self, rest: str = "") -> str:
        return f"/projects/{self.slug}{rest}"


class Clients:
    """httpx clients bound to fresh loopback addresses: one rate-limit bucket set each."""

    def __init__(self, base_url: str, net: int = 77) -> None:
        self.base_url = base_url
        self.net = net
        self._n = itertools.count()

    def new(self, base_url: str | None = None) -> httpx.Client:
        n = next(self._n)
        address = f"127.{self.net}.{n // 250}.{n % 250 + 2}"
        return httpx.Client(base_url=base_url or self.base_url, timeout=15,
                            # plain HTTP: skipping the CA bundle makes a client ~100x cheaper
                            transport=httpx.HTTPTransport(local_address=address, verify=False))

    @contextmanager
    def batch(self) -> Iterator[Callable[[], httpx.Client]]:
        """A factory whose clients are all closed when the block ends."""
        made: list[httpx.Client] = []

        def make() -> httpx.Client:
            made.append(self.new())
            return made[-1]

        try:
            yield make
        finally:
            for c in made:
                c.close()


def expect(resp: httpx.Response, status: int, what: str) -> dict[str, Any]:
    """Setup steps must work: a failure here is a broken fixture, reported loudly."""
    assert resp.status_code == status, f"setup {what}: {resp.status_code} {resp.text[:300]}"
    body: dict[str, Any] = resp.json()
    return body


def png(width: int = 8, height: int = 8) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    raw = b"".join(b"\x00" + bytes((x * 31 + y * 7) % 256 for x in range(width * 3))
                   for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class Env:
    """The users and worlds the matrix plays with, made through the real API."""

    # Who is who: the role keys of the matrix and the user playing them.
    USERS = ("owner", "admin", "member", "override", "target", "joiner", "outsider")

    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        self.marker = f"zqforeign{uuid.uuid4().hex[:8]}"  # in every row of the foreign project
        self.users: dict[str, User] = {}
        self.worlds: dict[str, World] = {}

    # -- users --
    def signup(self, key: str) -> User:
        tag = self.marker if key == "outsider" else uuid.uuid4().hex[:10]
        address = f"matrix-{key}-{tag}@example.com"
        name = f"Matrix {key.title()}" + (f" {self.marker}" if key == "outsider" else "")
        with self.clients.batch() as new:
            body = expect(new().post("/auth/signup", json={
                "email": address, "password": PASSWORD, "display_name": name}), 201, "signup")
        data = body["data"]
        return User(key=key, id=data["user"]["id"], email=address, token=data["token"],
                    display_name=name)

    def u(self, key: str) -> User:
        return self.users[key]

    # -- worlds --
    def join(self, setup: httpx.Client, world: World, user: User, role: str) -> None:
        """Invite `user` by email as the owner and accept as them."""
        inv = expect(setup.post(world.url("/team/invitations"), headers=world.owner.headers,
                                json={"email": user.email, "role": role}), 201, "invite")
        with self.clients.batch() as new:
            expect(new().post(f"/invitations/{inv['data']['token']}/accept",
                              headers=user.headers), 200, "accept")
        world.roles[user.id] = role

    def create_world(self, name: str, owner: User,
                     members: tuple[tuple[str, str], ...] = ()) -> World:
        with self.clients.batch() as new:
            setup = new()
            data = expect(setup.post("/projects", json={"name": name}, headers=owner.headers),
                          201, "create project")["data"]
            world = World(name=name, slug=data["slug"], id=data["id"], api_key=data["api_key"],
                          owner=owner, roles={owner.id: "owner"})
            for key, role in members:
                self.join(setup, world, self.u(key), role)
        return world

    def ensure_member(self, setup: httpx.Client, world: World, user: User, role: str) -> None:
        """`user` is a member of `world` with `role` (re-invited if a cell removed them)."""
        resp = setup.get(world.url(f"/team/{user.id}/permissions"), headers=world.owner.headers)
        if resp.status_code == 404:
            self.join(setup, world, user, role)
            return
        current = expect(resp, 200, "member permissions")["data"]["role"]
        if current != role:
            expect(setup.put(world.url(f"/team/{user.id}"), json={"role": role},
                             headers=world.owner.headers), 200, "reset role")

    def set_overrides(self, setup: httpx.Client, world: World, user: User,
                      overrides: dict[str, bool]) -> None:
        expect(setup.put(world.url(f"/team/{user.id}/permissions"),
                         json={"overrides": overrides}, headers=world.owner.headers),
               200, f"overrides {overrides}")

    def new_bug(self, setup: httpx.Client, world: World, **fields: Any) -> str:
        body = {"title": f"Matrix bug {uuid.uuid4().hex[:6]}", "category": "ui"} | fields
        bug = expect(setup.post(world.url("/bugs"), json=body, headers=world.owner.headers),
                     201, "create bug")["data"]
        return str(bug["id"])

    def new_label(self, setup: httpx.Client, world: World, name: str | None = None) -> str:
        data = expect(setup.post(world.url("/labels"), headers=world.owner.headers,
                                 json={"name": name or f"label-{uuid.uuid4().hex[:8]}",
                                       "color": "#aabbcc"}), 201, "create label")["data"]
        return str(data["id"])

    def new_changelog(self, setup: httpx.Client, world: World, title: str | None = None,
                      published: bool = False) -> str:
        data = expect(setup.post(world.url("/changelogs"), headers=world.owner.headers, json={
            "version": "1.0.0", "title": title or f"Notes {uuid.uuid4().hex[:6]}",
            "body": "Fixed things.", "published": published}), 201, "create changelog")["data"]
        return str(data["id"])

    def publish(self, setup: httpx.Client, world: World, bug_id: str) -> None:
        expect(setup.patch(world.url(f"/bugs/{bug_id}"), json={"is_public": True},
                           headers=world.owner.headers), 200, "make bug public")

    def seed(self, world: World, *, marker: str = "", tracker: bool = False) -> None:
        """The objects read routes use, plus (with a marker) rows that must never leak."""
        pre = f"{marker} " if marker else ""
        with self.clients.batch() as new:
            setup = new()
            similar = "Player falls through the bridge floor on level three"
            world.shared["bug_id"] = self.new_bug(setup, world, title=f"{pre}{similar}",
                                                  description="Every time near the bridge.")
            world.shared["public_bug_id"] = self.new_bug(setup, world,
                                                         title=f"{pre}Public crash in menu")
            self.publish(setup, world, world.shared["public_bug_id"])
            world.shared["label_id"] = self.new_label(
                setup, world, f"{marker}-label" if marker else None)
            world.shared["changelog_id"] = self.new_changelog(
                setup, world, f"{pre}Patch notes", published=True)
            expect(setup.post(world.url(f"/bugs/{world.shared['bug_id']}/comments"),
                              headers=world.owner.headers,
                              json={"body": f"{pre}internal note", "internal": True}),
                   201, "comment")
            # a pending invitation (with a marker: one that must not show in another list)
            world.shared["invitation_id"] = expect(setup.post(
                world.url("/team/invitations"), headers=world.owner.headers,
                json={"email": f"{marker or uuid.uuid4().hex[:10]}@example.com",
                      "role": "member"}), 201, "invitation")["data"]["id"]
            if tracker:
                self.enable_tracker(setup, world, True)
        # An SDK report with a screenshot: the attachment members download.
        with self.clients.batch() as new:
            shot = png()
            sub = expect(new().post("/bugs/submit", headers={"X-API-Key": world.api_key}, json={
                "title": f"{pre}SDK report {uuid.uuid4().hex[:6]}", "category": "gameplay",
                "screenshot": "data:image/png;base64," + base64.b64encode(shot).decode()}),
                201, "sdk submit")["data"]
        world.shared["attachment"] = {"bug_id": sub["id"], "attachment_id": sub["screenshot"]["id"],
                                      "bytes": shot}

    def enable_tracker(self, setup: httpx.Client, world: World, on: bool) -> None:
        expect(setup.put(world.url("/tracker"), headers=world.owner.headers, json={
            "enabled": on, "allow_voting": True, "allow_submissions": True}), 200, "tracker")
        world.tracker_enabled = on

    def build(self) -> None:
        """Users in parallel, then the three long-lived worlds in parallel."""
        with ThreadPoolExecutor(4) as pool:
            for user in pool.map(self.signup, self.USERS):
                self.users[user.key] = user
        team = (("admin", "admin"), ("member", "member"), ("override", "member"),
                ("target", "member"))

        def main() -> World:
            w = self.create_world("Matrix Main", self.u("owner"), team)
            self.seed(w)
            with self.clients.batch() as new:  # SDK settings that differ from the defaults
                expect(new().patch(w.url(), headers=w.owner.headers, json={
                    "settings": {"session_capture": True, "auto_file_errors": True}}),
                    200, "settings")
            return w

        def public() -> World:
            w = self.create_world("Matrix Public", self.u("owner"), team)
            self.seed(w, tracker=True)
            return w

        def foreign() -> World:
            w = self.create_world(f"Matrix {self.marker}", self.u("outsider"))
            self.seed(w, marker=self.marker, tracker=True)
            return w

        with ThreadPoolExecutor(3) as pool:
            futures = {name: pool.submit(fn) for name, fn in
                       (("main", main), ("public", public), ("foreign", foreign))}
            self.worlds = {name: f.result() for name, f in futures.items()}

    # -- who plays a role --
    def actor(self, role: str, world: World) -> User | None:
        return {
            "anonymous": None, "non_member": self.users["outsider"],
            "member": self.users["member"], "admin": self.users["admin"], "owner": world.owner,
            "member_deny": self.users["override"], "member_grant": self.users["override"],
            "other_user": self.users["outsider"], "invitee": self.users["joiner"],
            "key": None, "foreign_key": None, "no_key": None, "bearer_only": world.owner,
        }[role]

    def headers(self, role: str, world: World) -> dict[str, str]:
        if role == "key":
            return {"X-API-Key": world.api_key}
        if role == "foreign_key":
            return {"X-API-Key": self.worlds["foreign"].api_key}
        user = self.actor(role, world)
        return user.headers if user is not None else {}

    def fresh_members(self, role: str, needs_target: bool) -> tuple[tuple[str, str], ...]:
        mine = {"member": ("member", "member"), "admin": ("admin", "admin"),
                "member_deny": ("override", "member"), "member_grant": ("override", "member")}
        out = [mine[role]] if role in mine else []
        if needs_target:
            out.append(("target", "member"))
        return tuple(out)


# ---- a cell -----------------------------------------------------------------------------------

@dataclass
class Cell:
    env: Env
    world: World
    role: str
    actor: User | None
    setup: httpx.Client  # the owner's client for this cell's preparation
    new: Callable[[], httpx.Client]  # more clients (closed with the cell)
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def owner(self) -> User:
        return self.world.owner

    def u(self, key: str) -> User:
        return self.env.u(key)


IdsFactory = Callable[[Cell], dict[str, str]]
SendFactory = Callable[[Cell], dict[str, Any]]
Check = Callable[[Cell, httpx.Response], str | None]


@dataclass(frozen=True)
class Route:
    family: str
    method: str
    path: str  # the Flask rule after /api
    rule: Rule
    ok: int = 200
    variant: str = ""
    ids: IdsFactory | None = None
    send: SendFactory | None = None
    fresh_project: bool = False
    needs_target: bool = False
    check: Check | None = None
    envelope: bool = True

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}" + (f" [{self.variant}]" if self.variant else "")

    def roles(self) -> tuple[str, ...]:
        if self.rule.kind == "explicit":
            return tuple(role for role, _ in self.rule.special)
        return PROJECT_ROLES


def expected(route: Route, role: str, world: World) -> int:
    rule, special = route.rule, dict(route.rule.special)
    if rule.kind == "explicit":
        return special[role]
    if role in special:
        return special[role]
    if rule.kind == "public":
        return route.ok if world.tracker_enabled else 404
    if rule.kind == "upvote":
        return route.ok if world.tracker_enabled or role in MEMBER_ROLES else 404
    if role == "anonymous":
        return 401
    if rule.kind == "bearer":
        return route.ok
    if role == "non_member":
        return 404
    if rule.kind == "member":
        return route.ok
    if rule.kind == "nobody":
        return 403
    return route.ok if set(rule.perms) <= effective(rule, role) else 403


# ---- factories ---------------------------------------------------------------------------------

def shared(*names: str, **renamed: str) -> IdsFactory:
    """Ids of the world's long-lived objects; `bug_id="public_bug_id"` renames one."""
    wanted = dict(zip(names, names, strict=True)) | renamed
    return lambda c: {param: c.world.shared[name] for param, name in wanted.items()}


def attachment_ids(c: Cell) -> dict[str, str]:
    a = c.world.shared["attachment"]
    return {"bug_id": a["bug_id"], "attachment_id": a["attachment_id"]}


def fresh_bug(c: Cell) -> dict[str, str]:
    return {"bug_id": c.env.new_bug(c.setup, c.world)}


def fresh_label(c: Cell) -> dict[str, str]:
    return {"label_id": c.env.new_label(c.setup, c.world)}


def fresh_bug_and_label(c: Cell) -> dict[str, str]:
    return fresh_bug(c) | fresh_label(c)


def bug_with_label(c: Cell) -> dict[str, str]:
    ids = fresh_bug_and_label(c)
    expect(c.setup.post(c.world.url(f"/bugs/{ids['bug_id']}/labels"), headers=c.owner.headers,
                        json={"label_id": ids["label_id"]}), 200, "attach label")
    return ids


def fresh_invitation(c: Cell) -> dict[str, str]:
    inv = expect(c.setup.post(c.world.url("/team/invitations"), headers=c.owner.headers, json={
        "email": f"pending-{uuid.uuid4().hex[:10]}@example.com", "role": "member"}),
        201, "invite")["data"]
    return {"invitation_id": inv["id"]}


def invitation_token(c: Cell) -> dict[str, str]:
    """A pending invitation: to the joiner's address for the invitee, elsewhere otherwise."""
    address = (c.u("joiner").email if c.role == "invitee"
               else f"someone-{uuid.uuid4().hex[:10]}@example.com")
    inv = expect(c.setup.post(c.world.url("/team/invitations"), headers=c.owner.headers,
                              json={"email": address, "role": "member"}), 201, "invite")["data"]
    return {"token": inv["token"]}


def fresh_changelog(c: Cell) -> dict[str, str]:
    return {"changelog_id": c.env.new_changelog(c.setup, c.world)}


def target(role: str = "member", overrides: dict[str, bool] | None = None) -> IdsFactory:
    def make(c: Cell) -> dict[str, str]:
        t = c.u("target")
        c.env.ensure_member(c.setup, c.world, t, role)
        if overrides is not None:
            c.env.set_overrides(c.setup, c.world, t, overrides)
        return {"user_id": t.id}
    return make


def self_id(c: Cell) -> dict[str, str]:
    return {"user_id": (c.actor or c.u("member")).id}


def owner_id(c: Cell) -> dict[str, str]:
    return {"user_id": c.owner.id}


def member_id(c: Cell) -> dict[str, str]:
    return {"user_id": c.u("member").id}


def public_or_private_bug(c: Cell) -> dict[str, str]:
    key = "public_bug_id" if c.world.tracker_enabled else "bug_id"
    return {"bug_id": c.world.shared[key]}


def js(body: Any) -> SendFactory:
    return lambda c: {"json": body() if callable(body) else body}


def uniq(prefix: str) -> Callable[[], str]:
    return lambda: f"{prefix}-{uuid.uuid4().hex[:8]}"


# ---- checks on successful answers -----------------------------------------------------------------

def no_foreign_rows(c: Cell, resp: httpx.Response) -> str | None:
    if c.env.marker in resp.text.lower():
        return "another project's rows are in this answer"
    return None


def lists_my_projects(c: Cell, resp: httpx.Response) -> str | None:
    body = resp.json()
    rows = {p["slug"]: p["role"] for p in body["data"]}
    client = c.new()
    for page in range(2, body["meta"]["pages"] + 1):  # the caller may have many projects
        more = expect(client.get("/projects", params={"page": page, "limit": 100},
                                 headers=c.env.headers(c.role, c.world)), 200, "projects page")
        rows |= {p["slug"]: p["role"] for p in more["data"]}
    if c.role == "non_member":
        return "lists a project the caller is not a member of" if c.world.slug in rows else None
    if c.env.worlds["foreign"].slug in rows:
        return "lists another user's project"
    want = PROJECT_ROLE_OF[c.role]
    if rows.get(c.world.slug) != want:
        return f"project listed with role {rows.get(c.world.slug)!r}, expected {want!r}"
    return None


def is_the_project(c: Cell, resp: httpx.Response) -> str | None:
    data = resp.json()["data"]
    want = PROJECT_ROLE_OF[c.role]
    if data["slug"] != c.world.slug or data["role"] != want:
        return f"got {data['slug']}/{data['role']}, expected {c.world.slug}/{want}"
    if "api_key" in data:
        return "GET shows the full api_key"
    return None


def spec_permission_table(c: Cell, resp: httpx.Response) -> str | None:
    data = resp.json()["data"]
    got = {"permissions": tuple(data["permissions"]),
           "roles": {r: frozenset(p) for r, p in data["roles"].items()}}
    want = {"permissions": SPEC_PERMISSIONS, "roles": SPEC_ROLE_DEFAULTS}
    return None if got == want else f"permission table differs from the spec: {data}"


def masked_key(c: Cell, resp: httpx.Response) -> str | None:
    key = resp.json()["data"]["api_key"]
    return None if key != c.world.api_key and "…" in key else f"api key not masked: {key}"


def new_full_key(c: Cell, resp: httpx.Response) -> str | None:
    key = resp.json()["data"]["api_key"]
    ok = key.startswith("sk_live_") and len(key) >= 40 and key != c.world.api_key
    return None if ok else f"not a fresh full key: {key}"


def the_bug(c: Cell, resp: httpx.Response) -> str | None:
    data = resp.json()["data"]
    return None if data["id"] == c.ids["bug_id"] else "another bug answered"


def transferred(c: Cell, resp: httpx.Response) -> str | None:
    return None if resp.json()["data"]["role"] == "owner" else "ownership did not move"


def the_attachment(c: Cell, resp: httpx.Response) -> str | None:
    return (None if resp.content == c.world.shared["attachment"]["bytes"]
            else "attachment bytes differ")


def sdk_settings_of_this_project(c: Cell, resp: httpx.Response) -> str | None:
    # The main world turned session capture on; the foreign project kept the default (off).
    want = c.role == "key"
    got = resp.json()["data"]["session_capture"]
    return None if got is want else f"settings of the wrong project (session_capture={got})"


def submit_lands_in_the_key_project(c: Cell, resp: httpx.Response) -> str | None:
    bug_id = resp.json()["data"]["id"]
    seen = c.setup.get(c.world.url(f"/bugs/{bug_id}"), headers=c.owner.headers).status_code
    want = 200 if c.role == "key" else 404
    return None if seen == want else f"report seen in this project: {seen}, expected {want}"


# ---- the table ---------------------------------------------------------------------------------

def both(method_pair: tuple[str, str], **kw: Any) -> list[Route]:
    return [Route(method=m, **kw) for m in method_pair]


PATCH_PUT = ("PATCH", "PUT")
BUG = "/projects/<slug>/bugs/<bug_id>"
TEAM_USER = "/projects/<slug>/team/<user_id>"

ROUTES: list[Route] = [
    # -- projects and API keys --
    Route("projects", "GET", "/projects", BEARER, send=lambda c: {"params": {"limit": 100}},
          check=lists_my_projects),
    Route("projects", "POST", "/projects", BEARER, ok=201,
          send=js(lambda: {"name": f"Matrix Extra {uuid.uuid4().hex[:6]}"})),
    Route("projects", "GET", "/projects/<slug>", member(), check=is_the_project),
    *both(PATCH_PUT, family="projects", path="/projects/<slug>", rule=perm("settings.manage"),
          send=js({"description": "Changed by the matrix"}), check=no_foreign_rows),
    Route("projects", "DELETE", "/projects/<slug>", perm("project.delete"), fresh_project=True),
    Route("projects", "GET", "/projects/<slug>/api-key", perm("api_key.manage"), check=masked_key),
    Route("projects", "POST", "/projects/<slug>/api-key/regenerate", perm("api_key.manage"),
          fresh_project=True, check=new_full_key),

    # -- bugs --
    Route("bugs", "GET", "/projects/<slug>/bugs", perm("bugs.view"), check=no_foreign_rows),
    Route("bugs", "POST", "/projects/<slug>/bugs", perm("bugs.create"), ok=201,
          send=js({"title": "Filed in the matrix", "category": "ui", "priority": "low"})),
    Route("bugs", "GET", BUG, perm("bugs.view"), ids=shared("bug_id"), check=the_bug),
    *both(PATCH_PUT, family="bugs", path=BUG, rule=perm("bugs.edit"), ids=fresh_bug,
          send=js({"priority": "high", "status": "in_progress"})),
    *both(PATCH_PUT, family="bugs", path=BUG, variant="assignee change",
          rule=perm("bugs.edit", "bugs.assign"), ids=fresh_bug,
          send=lambda c: {"json": {"assignee": c.owner.id}}),
    Route("bugs", "DELETE", BUG, perm("bugs.delete"), ids=fresh_bug, check=the_bug),
    Route("bugs", "POST", "/projects/<slug>/bugs/bulk", perm("bugs.edit"), ids=fresh_bug,
          send=lambda c: {"json": {"bug_ids": [c.ids["bug_id"]], "priority": "critical"}}),
    Route("bugs", "POST", "/projects/<slug>/bugs/bulk", perm("bugs.edit", "bugs.assign"),
          variant="assignee change", ids=fresh_bug,
          send=lambda c: {"json": {"bug_ids": [c.ids["bug_id"]], "assignee": c.owner.id}}),
    Route("bugs", "POST", f"{BUG}/comments", perm("comments.create"), ok=201,
          ids=shared("bug_id"), send=js({"body": "A comment from the matrix"})),
    Route("bugs", "POST", f"{BUG}/comments", perm("comments.create", "comments.internal"),
          variant="internal", ok=201, ids=shared("bug_id"),
          send=js({"body": "An internal note from the matrix", "internal": True})),
    Route("bugs", "POST", "/projects/<slug>/bugs/similar", perm("bugs.view"),
          send=js({"title": "Player falls through the bridge floor",
                   "description": "near the bridge on level three"}),
          check=no_foreign_rows),
    Route("bugs", "GET", f"{BUG}/activity", perm("bugs.view"), ids=shared("bug_id"),
          check=no_foreign_rows),
    Route("bugs", "GET", f"{BUG}/attachments/<attachment_id>", perm("bugs.view"),
          ids=attachment_ids, check=the_attachment, envelope=False),

    # -- labels --
    Route("labels", "GET", "/projects/<slug>/labels", perm("bugs.view"), check=no_foreign_rows),
    Route("labels", "POST", "/projects/<slug>/labels", perm("labels.manage"), ok=201,
          send=js(lambda: {"name": uniq("new")(), "color": "#123456"})),
    *both(PATCH_PUT, family="labels", path="/projects/<slug>/labels/<label_id>",
          rule=perm("labels.manage"), ids=fresh_label,
          send=js(lambda: {"name": uniq("renamed")(), "color": "#654321"})),
    Route("labels", "DELETE", "/projects/<slug>/labels/<label_id>", perm("labels.manage"),
          ids=fresh_label),
    Route("labels", "POST", f"{BUG}/labels", perm("bugs.edit"), ids=fresh_bug_and_label,
          send=lambda c: {"json": {"label_id": c.ids["label_id"]}}),
    Route("labels", "DELETE", f"{BUG}/labels/<label_id>", perm("bugs.edit"), ids=bug_with_label),

    # -- team and permissions --
    Route("team", "GET", "/projects/<slug>/team", perm("team.view"), check=no_foreign_rows),
    # Nobody gives a role above their own: a member granted team.manage cannot make admins.
    *both(PATCH_PUT, family="team", path=TEAM_USER, rule=perm("team.manage", member_grant=403),
          variant="another member's role", ids=target("member"), needs_target=True,
          send=js({"role": "admin"})),
    *both(PATCH_PUT, family="team", path=TEAM_USER, variant="ownership transfer",
          rule=nobody(owner=200), ids=target("member"), needs_target=True, fresh_project=True,
          send=js({"role": "owner"}), check=transferred),
    *both(PATCH_PUT, family="team", path=TEAM_USER, variant="demote the owner",
          rule=nobody(owner=409), ids=owner_id, fresh_project=True,
          send=js({"role": "member"})),
    *both(PATCH_PUT, family="team", path=TEAM_USER, variant="raise own role",
          # admin -> admin changes nothing (200); the owner must transfer first (409).
          rule=nobody(admin=200, owner=409), ids=self_id, fresh_project=True,
          send=js({"role": "admin"})),
    Route("team", "DELETE", TEAM_USER, perm("team.manage"), variant="remove another member",
          ids=target("member"), needs_target=True),
    Route("team", "DELETE", TEAM_USER, member(owner=409), variant="leave (self)",
          ids=self_id, fresh_project=True),
    Route("team", "DELETE", TEAM_USER, nobody(owner=409), variant="remove the owner",
          ids=owner_id, fresh_project=True),
    Route("team", "POST", "/projects/<slug>/team/invitations", perm("team.manage"), ok=201,
          send=js(lambda: {"email": f"{uniq('invitee')()}@example.com", "role": "member"})),
    Route("team", "GET", "/projects/<slug>/team/invitations", perm("team.manage"),
          check=no_foreign_rows),
    Route("team", "DELETE", "/projects/<slug>/team/invitations/<invitation_id>",
          perm("team.manage"), ids=fresh_invitation),
    Route("team", "POST", "/invitations/<token>/accept",
          explicit(anonymous=401, other_user=403, invitee=200), ids=invitation_token,
          fresh_project=True),
    Route("team", "GET", "/projects/<slug>/permissions", perm("team.view"),
          check=spec_permission_table),
    Route("team", "GET", f"{TEAM_USER}/permissions", perm("team.view"), ids=member_id),
    # Nobody grants a permission they lack: team.manage alone cannot grant labels.manage...
    Route("team", "PUT", f"{TEAM_USER}/permissions", perm("team.manage", member_grant=403),
          variant="another member", ids=target("member"), needs_target=True,
          send=js({"overrides": {"labels.manage": True, "bugs.delete": False}})),
    # ...but may deny.
    Route("team", "PUT", f"{TEAM_USER}/permissions", perm("team.manage"),
          variant="another member, denials only", ids=target("member"), needs_target=True,
          send=js({"overrides": {"bugs.delete": False}})),
    Route("team", "PUT", f"{TEAM_USER}/permissions", nobody(owner=400),
          # the owner's permissions cannot be reduced: 400, as a validation error
          variant="own overrides", ids=self_id,
          send=js({"overrides": {"settings.manage": True}})),
    Route("team", "DELETE", f"{TEAM_USER}/permissions", perm("team.manage"),
          variant="another member", needs_target=True,
          ids=target("member", {"labels.manage": True})),

    # -- tracker settings, branding, changelogs --
    Route("settings", "GET", "/projects/<slug>/tracker", perm("settings.manage")),
    *both(PATCH_PUT, family="settings", path="/projects/<slug>/tracker",
          rule=perm("settings.manage"), send=js({"title": "Matrix tracker"})),
    Route("settings", "GET", "/projects/<slug>/branding", perm("settings.manage")),
    *both(PATCH_PUT, family="settings", path="/projects/<slug>/branding",
          rule=perm("settings.manage"), send=js({"primary_color": "#112233"})),
    Route("settings", "GET", "/projects/<slug>/changelogs", perm("changelogs.manage"),
          check=no_foreign_rows),
    Route("settings", "POST", "/projects/<slug>/changelogs", perm("changelogs.manage"), ok=201,
          send=js({"version": "2.0.0", "title": "Matrix notes", "body": "Things."})),
    Route("settings", "GET", "/projects/<slug>/changelogs/<changelog_id>",
          perm("changelogs.manage"), ids=shared("changelog_id")),
    *both(PATCH_PUT, family="settings", path="/projects/<slug>/changelogs/<changelog_id>",
          rule=perm("changelogs.manage"), ids=fresh_changelog,
          send=js({"title": "Renamed notes"})),
    Route("settings", "DELETE", "/projects/<slug>/changelogs/<changelog_id>",
          perm("changelogs.manage"), ids=fresh_changelog),

    # -- public tracker (players): anyone when enabled, 404 for everyone when not --
    Route("public", "GET", "/projects/<slug>/public/tracker", PUBLIC),
    Route("public", "GET", "/projects/<slug>/public/bugs", PUBLIC, check=no_foreign_rows),
    Route("public", "POST", "/projects/<slug>/public/bugs", PUBLIC, ok=201,
          send=js({"title": "A player's report", "description": "It broke at the gate."})),
    Route("public", "GET", "/projects/<slug>/public/bugs/<bug_id>", PUBLIC,
          ids=shared(bug_id="public_bug_id")),
    Route("public", "POST", "/projects/<slug>/public/bugs/<bug_id>/vote", PUBLIC,
          ids=shared(bug_id="public_bug_id")),
    Route("public", "GET", "/projects/<slug>/public/changelogs", PUBLIC, check=no_foreign_rows),
    Route("public", "GET", "/projects/<slug>/public/branding", PUBLIC),
    Route("public", "POST", f"{BUG}/upvote", UPVOTE, ids=public_or_private_bug),

    # -- SDK (project API key) --
    Route("sdk", "GET", "/bugs/settings",
          explicit(key=200, foreign_key=200, no_key=401, bearer_only=401),
          check=sdk_settings_of_this_project),
    Route("sdk", "POST", "/bugs/submit",
          explicit(key=201, foreign_key=201, no_key=401, bearer_only=401),
          send=js(lambda: {"title": f"SDK matrix {uuid.uuid4().hex[:6]}",
                           "category": "gameplay", "steps_to_reproduce": "1. play"}),
          check=submit_lands_in_the_key_project),
    Route("sdk", "POST", "/session-replays",
          # a foreign key authenticates another project: this project's bug is unseen (404)
          explicit(key=201, foreign_key=404, no_key=401, bearer_only=401),
          ids=shared("bug_id"),
          send=lambda c: {"data": {"bug_report_id": c.ids["bug_id"], "duration_sec": "3"},
                          "files": {"file": ("replay.json", b'[{"t": 0}]', "application/json")}}),
]

# Served by the bugs app but not part of the public API (never routed by Envoy).
NOT_IN_MATRIX = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}


# ---- playing cells -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    route: Route
    world: str
    role: str
    expected: int
    actual: int
    problem: str | None

    @property
    def row(self) -> str:
        return self.route.label + (f" ({self.world})" if self.route.family == "public" else "")


def path_params(path: str) -> list[str]:
    return re.findall(r"<(\w+)>", path)


def foreign_ids(env: Env) -> dict[str, str]:
    """An id of the foreign project for every kind of path parameter (a user who is not a
    member of the other worlds for `user_id`)."""
    f = env.worlds["foreign"].shared
    return {"bug_id": f["bug_id"], "label_id": f["label_id"], "changelog_id": f["changelog_id"],
            "invitation_id": f["invitation_id"], "attachment_id": f["attachment"]["attachment_id"],
            "user_id": env.u("outsider").id}


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"<(\w+)>", lambda m: ids[m.group(1)], path)


GATEWAY_401 = "Missing or invalid bearer token"
GATEWAY_404 = "No such endpoint"


def judge(resp: httpx.Response, want: int, route: Route, cell: Cell) -> str | None:
    if resp.status_code != want:
        return f"expected {want}, got {resp.status_code}: {resp.text[:160]}"
    if not route.envelope and want < 300:
        return route.check(cell, resp) if route.check else None
    if not resp.headers.get("content-type", "").startswith("application/json"):
        return f"not JSON: {resp.headers.get('content-type')}"
    body = resp.json()
    if want >= 400:
        error = body.get("error")
        if body.get("ok") is not False or not isinstance(error, str) or not error:
            return f"not an error envelope: {resp.text[:160]}"
        if error.startswith(GATEWAY_404):
            return "Envoy does not route this path to the bugs service"
        bearer_route = route.rule.kind not in ("public", "upvote", "explicit")
        if want == 401 and bearer_route and not error.startswith(GATEWAY_401):
            return f"the 401 did not come from the gateway: {error!r}"
        return None
    if body.get("ok") is not True or "data" not in body:
        return f"not a success envelope: {resp.text[:160]}"
    return route.check(cell, resp) if route.check else None


def same_as_unknown_project(cell: Cell, route: Route, resp: httpx.Response,
                            kwargs: dict[str, Any]) -> str | None:
    """A 404 for someone outside the project must be the very answer an unknown project gets
    (for every path under it), or the project's existence leaks."""
    ghost = fill(route.path, cell.ids | {"slug": f"ghost-{uuid.uuid4().hex[:10]}"})
    other = cell.new().request(route.method, ghost,
                               headers=cell.env.headers(cell.role, cell.world), **kwargs)
    if other.status_code != 404 or other.json().get("error") != resp.json().get("error"):
        return (f"differs from an unknown project's answer: {resp.text[:100]} vs "
                f"{other.status_code} {other.text[:100]}")
    return None


def play(env: Env, route: Route, role: str, world: World) -> Outcome:
    with env.clients.batch() as new:
        setup = new()
        if route.fresh_project:
            world = env.create_world(f"Matrix Fresh {uuid.uuid4().hex[:6]}", world.owner,
                                     env.fresh_members(role, route.needs_target))
        actor = env.actor(role, world)
        if role in ("member_deny", "member_grant"):
            env.set_overrides(setup, world, env.u("override"), overrides_for(route.rule, role))
        cell = Cell(env=env, world=world, role=role, actor=actor, setup=setup, new=new)
        cell.ids = {"slug": world.slug} | (route.ids(cell) if route.ids else {})
        kwargs = route.send(cell) if route.send else {}
        want = expected(route, role, world)
        resp = new().request(route.method, fill(route.path, cell.ids),
                             headers=env.headers(role, world), **kwargs)
        problem = judge(resp, want, route, cell)
        if problem is None and role in ("non_member", "anonymous") and want == 404:
            problem = same_as_unknown_project(cell, route, resp, kwargs)
    tag = "tracker on" if world.tracker_enabled else "tracker off"
    return Outcome(route=route, world=tag, role=role, expected=want, actual=resp.status_code,
                   problem=problem)


def play_family(env: Env, family: str, world: World) -> list[Outcome]:
    """Every cell of a family, one route after another (cells of one route share the world's
    override member, so they run in order)."""
    out: list[Outcome] = []
    for route in (r for r in ROUTES if r.family == family):
        for role in route.roles():
            out.append(play(env, route, role, world))
    return out


def mismatches(outcomes: Sequence[Any]) -> list[str]:
    """Each cell that went wrong, as `row as role: problem` (any matrix's outcomes)."""
    return [f"{o.row} as {o.role}: {o.problem}" for o in outcomes if o.problem]


SHORT = {"anonymous": "anon", "non_member": "nonmbr", "member": "member", "admin": "admin",
         "owner": "owner", "member_deny": "deny", "member_grant": "grant", "key": "key",
         "foreign_key": "f.key", "no_key": "no key", "bearer_only": "bearer",
         "other_user": "other", "invitee": "invitee", "user": "user"}


def summary(outcomes: Sequence[Any],
            expected: Callable[[Any], object] = lambda o: o.expected) -> str:
    """route by role -> status, one table per set of roles; a mismatch shows as `actual!expected`.
    Any matrix's outcomes (row, role, route, actual, problem); `expected` picks what to print."""
    if not outcomes:
        return ""
    rows: dict[str, dict[str, str]] = {}
    roles_of: dict[str, tuple[str, ...]] = {}
    for o in outcomes:
        mark = str(o.actual) if not o.problem else f"{o.actual}!{expected(o)}"
        rows.setdefault(o.row, {})[o.role] = mark
        roles_of[o.row] = o.route.roles()
    width = max(len(r) for r in rows) + 1
    lines: list[str] = []
    for cols in dict.fromkeys(roles_of.values()):
        head = "route".ljust(width) + " ".join(SHORT[c].rjust(7) for c in cols)
        lines += ["", head, "-" * len(head)]
        lines += [row.ljust(width) + " ".join(cells.get(c, "").rjust(7) for c in cols)
                  for row, cells in rows.items() if roles_of[row] == cols]
    bad = sum(1 for o in outcomes if o.problem)
    lines.append(f"{len(outcomes)} cells over {len(rows)} route rows; {bad} mismatches")
    return "\n".join(lines)


def wait_for(fn: Callable[[], bool], timeout: float = 5.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(step)
    return fn()
