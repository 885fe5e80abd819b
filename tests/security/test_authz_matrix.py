"""Authorization matrix over every project-scoped route of every service, through Envoy
(issue 7; spec §1, §2, §5, §6, §7, §8).

The rows come from two tables: ``e2e.bugs_matrix.ROUTES`` (the bugs service) and
``security.matrix.ROUTES`` (analytics, integrations, notifications, the analytics SDK routes).
The first test reads the route table the served OpenAPI document is built from and fails
when a project-scoped, per-user or API-key route has no row in either.

Roles: anonymous (the gateway's 401), a signed-in user of another project (404, the very
answer an unknown project gets), member, admin, owner, a member whose override denies the
route's permission, a member whose override grants it (where a member lacks it); SDK routes:
the project's key, another project's key, no key, a bearer token alone; notifications: the
user, another user. Expected statuses come from the spec's permission table. List answers
must not contain the ids of rows made in another project (or for another user).

`make test` plays one route per family for every role (and every other-project id in a
path); `make test-security` plays every route (marker ``heavy``). `-s` prints the route x
role table.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e import bugs_matrix as bm
from security import matrix as mx

from bugnet_stack import Stack

pytestmark = pytest.mark.timeout(900)

OUTCOMES: list[mx.Outcome] = []
BUGS_OUTCOMES: list[bm.Outcome] = []


@pytest.fixture(scope="module", autouse=True)
def _print_summary() -> Iterator[None]:
    yield
    if OUTCOMES or BUGS_OUTCOMES:
        print("\n\nauthorization matrix (actual status; `actual!expected` on a mismatch)")
        print(bm.summary(BUGS_OUTCOMES))
        print(mx.summary(OUTCOMES))


@pytest.fixture(scope="module")
def env(stack: Stack) -> Iterator[mx.MatrixEnv]:
    with mx.fake_provider() as provider:
        e = mx.MatrixEnv(bm.Clients(stack.urls.gateway + "/api", net=78), provider)
        e.build()
        print("\nmatrix set-up (cumulative seconds):",
              ", ".join(f"{k} {v:.1f}" for k, v in e.timings.items()))
        yield e


def play_bugs(env: mx.MatrixEnv, routes: list[bm.Route]) -> list[bm.Outcome]:
    out: list[bm.Outcome] = []
    for route in routes:
        worlds = (["main", "public"] if route.rule.kind in ("public", "upvote") else ["main"])
        for name in worlds:
            for role in route.roles():
                out.append(bm.play(env, route, role, env.worlds[name]))
    return out


def assert_clean(mine: list[mx.Outcome], bugs: list[bm.Outcome]) -> None:
    OUTCOMES.extend(mine)
    BUGS_OUTCOMES.extend(bugs)
    assert mine or bugs
    problems = bm.mismatches(mine) + bm.mismatches(bugs)
    total = len(mine) + len(bugs)
    assert not problems, (f"{len(problems)} of {total} cells differ from the spec:\n"
                          + "\n".join(problems))


# ---- the table covers the route table ------------------------------------------------------------

def test_every_scoped_route_of_every_service_has_a_matrix_row() -> None:
    scoped = mx.scoped_routes()
    tabled = mx.tabled_routes()
    missing = sorted(scoped - tabled)
    assert not missing, f"routes missing from the authorization matrix: {missing}"
    mine = {(r.method, mx.openapi_path(r.path)) for r in mx.ROUTES}
    stale = sorted(mine - scoped)
    assert not stale, f"matrix rows for routes no service serves: {stale}"
    services = {path.split("/")[4] for _, path in scoped if path.startswith("/api/projects/{slug}/")}
    assert len(scoped) >= 110 and {"analytics", "webhooks", "alerts", "bugs"} <= services


def test_the_spec_roles_here_are_the_bugs_matrix_ones() -> None:
    assert bm.SPEC_ROLE_DEFAULTS["member"] == mx.MEMBER_DEFAULTS
    assert not set(mx.GRANTED) & mx.MEMBER_DEFAULTS
    assert set(mx.DENIED) <= set(bm.SPEC_PERMISSIONS)


# ---- the rows a leak would show are there --------------------------------------------------------

def test_the_foreign_rows_are_there_to_leak(env: mx.MatrixEnv) -> None:
    """Each foreign id the list checks look for is in the foreign owner's own answer."""
    foreign, f = env.worlds["foreign"], env.rows[env.worlds["foreign"].name]
    outsider = env.u("outsider").headers
    with env.clients.batch() as new:
        api = new()

        def text(rest: str) -> str:
            resp = api.get(foreign.url(rest), headers=outsider)
            assert resp.status_code == 200, resp.text
            return resp.text

        assert f["webhook_id"] in text("/webhooks")
        assert f["delivery_id"] in text(f"/webhooks/{f['webhook_id']}/deliveries")
        assert f["alert_id"] in text("/alerts")
        assert f["regression_id"] in text("/regressions")
        assert f["version"] in text("/analytics/releases")
        # the foreign owner (the `other_user`) is told of their own alert's firing
        assert mx.wait_until(lambda: f["alert_id"] in api.get(
            "/notifications", headers=outsider, params={"limit": 100}).text, timeout=20)
        note = env.rows["notes"]["foreign_member"]
        assert note in api.get("/notifications", headers=env.u("foreign_member").headers).text
        mine = env.rows["notes"]["member"]
        assert mine in api.get("/notifications", headers=env.u("member").headers).text


# ---- the matrix -------------------------------------------------------------------------------------

def test_matrix_analytics_integrations_notifications_and_sdk_routes(env: mx.MatrixEnv) -> None:
    """Every route of this module's table, every role (a few seconds: played by default)."""
    assert_clean(mx.play_routes(env, mx.ROUTES), [])


def test_matrix_bugs_routes_one_per_family(env: mx.MatrixEnv) -> None:
    """The bugs service's table, one route per family (tests/e2e/test_bugs_authz_matrix.py
    plays all of it in `make test`; the heavy test below plays the rest here)."""
    assert_clean([], play_bugs(env, mx.sample(bm.ROUTES)))


@pytest.mark.heavy
def test_matrix_bugs_routes_every_route(env: mx.MatrixEnv) -> None:
    sampled = {id(r) for r in mx.sample(bm.ROUTES)}
    assert_clean([], play_bugs(env, [r for r in bm.ROUTES if id(r) not in sampled]))


def test_lost_standing_is_lost_at_every_service(env: mx.MatrixEnv) -> None:
    """Demoted, denied, removed: the analytics and integrations services (which learn members
    from the bus) follow the bugs service within seconds; nobody keeps a stale grant."""
    world = env.create_world("Matrix Standing", env.u("owner"), (("joiner", "admin"),))
    joiner = env.u("joiner")
    paths = ("", "/analytics", "/alerts", "/webhooks")

    def standing() -> tuple[int, ...]:
        with env.clients.batch() as new:
            api = new()
            return tuple(api.get(world.url(p), headers=joiner.headers).status_code
                         for p in paths)

    def reaches(want: tuple[int, ...], timeout: float = 5.0) -> tuple[int, ...]:
        mx.wait_until(lambda: standing() == want, timeout=timeout)
        return standing()

    assert reaches((200, 200, 200, 200), timeout=15) == (200, 200, 200, 200)
    env.owner_call(world, "PUT", f"/team/{joiner.id}", 200, json={"role": "member"})
    assert reaches((200, 200, 403, 403)) == (200, 200, 403, 403)
    env.owner_call(world, "PUT", f"/team/{joiner.id}/permissions", 200,
                   json={"overrides": {"analytics.view": False}})
    assert reaches((200, 403, 403, 403)) == (200, 403, 403, 403)
    env.owner_call(world, "DELETE", f"/team/{joiner.id}", 200)
    gone = reaches((404, 404, 404, 404))
    assert gone == (404, 404, 404, 404)
    with env.clients.batch() as new:  # ...and gone looks like never there
        assert (new().get(world.url("/alerts"), headers=joiner.headers).json()["error"]
                == new().get("/projects/no-such-project-x/alerts",
                             headers=joiner.headers).json()["error"])


def test_notifications_follow_the_permission_to_see_bugs(env: mx.MatrixEnv) -> None:
    """The main world's `new_bug` alert (in-app) fired on the bugs the set-up filed: members
    who may see bugs are told, the member denied bugs.view and outsiders are not."""
    main = env.worlds["main"]

    def events(key: str) -> list[tuple[str, str | None]]:
        with env.clients.batch() as new:
            data = new().get("/notifications", headers=env.u(key).headers,
                             params={"limit": 100}).json()["data"]
        return [(n["event"], (n.get("project") or {}).get("slug")) for n in data]

    told = ("alert_triggered", main.slug)
    assert mx.wait_until(lambda: told in events("member"), timeout=20), events("member")
    assert told in events("admin")
    assert [e for e in events(mx.user_key("deny", "bugs.view")) if e[1] == main.slug] == []
    assert [e for e in events("outsider") if e[1] == main.slug] == []


def test_preferences_do_not_tell_a_foreign_project_from_an_unknown_one(
        env: mx.MatrixEnv) -> None:
    member, foreign = env.u("member").headers, env.worlds["foreign"]
    with env.clients.batch() as new:
        answers = [new().put("/notifications/preferences", headers=member, json={
            "projects": {slug: {"in_app": {"bug_assigned": False}}}})
            for slug in (foreign.slug, "no-such-project-x")]
    assert [a.status_code for a in answers] == [400, 400]
    theirs, unknown = (a.json() for a in answers)
    assert theirs["error"].replace(foreign.slug, "?") == unknown["error"].replace(
        "no-such-project-x", "?")


def test_another_projects_key_cannot_attach_perf_to_this_projects_bug(
        env: mx.MatrixEnv) -> None:
    main, foreign = env.worlds["main"], env.worlds["foreign"]
    bug = main.shared["bug_id"]
    with env.clients.batch() as new:
        sent = new().post("/perf/snapshot", headers={"X-API-Key": foreign.api_key}, json={
            "fps": 13.37, "frame_time_ms": 74.8, "memory_used_mb": 1, "bug_report_id": bug})
        assert sent.status_code == 201, sent.text
        # stored, under the key's project (which may read what it sent)...
        assert mx.wait_until(lambda: any(s["fps"] == 13.37 for s in new().get(
            foreign.url(f"/bugs/{bug}/performance"), headers=foreign.owner.headers,
            params={"limit": 100}).json().get("data") or []), timeout=15)
        # ...and never shown to the project the bug belongs to
        mine = new().get(main.url(f"/bugs/{bug}/performance"), headers=main.owner.headers,
                         params={"limit": 100})
        assert mine.status_code == 200, mine.text
        assert all(s["fps"] != 13.37 for s in mine.json()["data"]), mine.text


def test_another_projects_ids_are_404_in_every_path(env: mx.MatrixEnv) -> None:
    """The owner holds every permission, yet an id of another project (or another user's
    notification) in a path is 404, never acted upon."""
    main, foreign = env.worlds["main"], env.worlds["foreign"]
    f = env.rows[foreign.name]
    theirs = {"webhook_id": f["webhook_id"], "delivery_id": f["delivery_id"],
              "alert_id": f["alert_id"], "regression_id": f["regression_id"],
              "bug_id": foreign.shared["bug_id"], "version": f["version"],
              "notification_id": env.rows["notes"]["foreign_member"]}
    problems, tried = [], 0
    for route in mx.ROUTES:
        params = [p for p in mx._PARAM.findall(route.path) if p != "slug"]
        if not params or route.kind == "sdk":
            continue
        for param in params:
            with env.clients.batch() as new:
                cell = mx.Cell(env=env, route=route, role="owner", new=new)
                mine = {"slug": main.slug} | (route.ids(cell) if route.ids else {})
                # ids the route factory did not make (the git-issue pool): the shared bug
                mine.setdefault("bug_id", main.shared["bug_id"])
                cell.ids = mine | {param: theirs[param]}
                kwargs = route.send(cell) if route.send else {}
                headers = main.owner.headers if route.kind == "perm" else env.u("member").headers
                resp = new().request(route.method, mx.fill(route.path, cell.ids),
                                     headers=headers, **kwargs)
                tried += 1
                if resp.status_code != 404 or resp.json().get("ok") is not False:
                    problems.append(f"{route.label} with their {param}: {resp.status_code} "
                                    f"{resp.text[:120]}")
    assert tried >= 20
    assert not problems, "another project's ids were accepted:\n" + "\n".join(problems)
    with env.clients.batch() as new:  # ...and their rows are untouched
        api, outsider = new(), env.u("outsider").headers
        assert api.get(foreign.url(f"/webhooks/{f['webhook_id']}"),
                       headers=outsider).status_code == 200
        assert api.get(foreign.url(f"/alerts/{f['alert_id']}"),
                       headers=outsider).status_code == 200
        regressions = api.get(foreign.url("/regressions"), headers=outsider).json()["data"]
        assert [r["status"] for r in regressions if r["id"] == f["regression_id"]] == ["open"]
        notes = api.get("/notifications", headers=env.u("foreign_member").headers).json()["data"]
        assert [n["read"] for n in notes if n["id"] == theirs["notification_id"]] in ([False], [None])
