"""The bugs service's authorization matrix through Envoy (spec §1, §2, §5, §8).

Every route the bugs service serves is in ``bugs_matrix.ROUTES`` (the first test fails when the
Flask app grows a route the table lacks). Each project route is played by an anonymous caller,
a signed-in non-member, a member, an admin, the owner, a member whose override denies the
route's permission and a member whose override grants it; SDK routes by the project's key, a
foreign project's key, no key and a bearer without a key. Expected statuses come from the
spec's permission table. Mismatches are collected and asserted once per route family; run with
``-s`` to see the route x role summary at the end.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

import pytest
from e2e.bugs_matrix import (
    NOT_IN_MATRIX,
    ROUTES,
    SPEC_PERMISSIONS,
    SPEC_ROLE_DEFAULTS,
    Cell,
    Clients,
    Env,
    Outcome,
    World,
    expect,
    fill,
    foreign_ids,
    mismatches,
    path_params,
    play_family,
    summary,
    wait_for,
)
from e2e.support import assert_envelope_error

from bugnet_stack import Stack

pytestmark = pytest.mark.timeout(400)

OUTCOMES: list[Outcome] = []


@pytest.fixture(scope="module", autouse=True)
def _print_summary() -> Iterator[None]:
    yield
    if OUTCOMES:
        print("\n\nbugs authorization matrix (actual; `actual!expected` on a mismatch)")
        print(summary(OUTCOMES))


@pytest.fixture(scope="module")
def env(stack: Stack) -> Env:
    e = Env(Clients(stack.urls.gateway + "/api"))
    e.build()
    return e


def check_family(env: Env, family: str, *worlds: World) -> None:
    outcomes = [o for w in worlds for o in play_family(env, family, w)]
    OUTCOMES.extend(outcomes)
    assert outcomes
    problems = mismatches(outcomes)
    assert not problems, f"{len(problems)} of {len(outcomes)} {family} cells differ from the " \
                         "spec:\n" + "\n".join(problems)


# ---- the table itself --------------------------------------------------------------------------

def test_the_table_covers_every_route_the_bugs_app_serves() -> None:
    from bugs.app import create_app
    from bugs.settings import BugsSettings

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        app = create_app(BugsSettings(bus_in_api=False))
    finally:  # the app configures process-wide JSON logging; keep the test run's own
        root.setLevel(level)
        root.handlers[:] = handlers
    served = {(method, rule.rule) for rule in app.url_map.iter_rules()
              for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    tabled = {(r.method, "/api" + r.path) for r in ROUTES}
    missing = sorted(served - tabled - NOT_IN_MATRIX)
    assert not missing, f"bugs routes missing from the authorization matrix: {missing}"
    stale = sorted(tabled - served)
    assert not stale, f"matrix rows for routes the bugs app does not serve: {stale}"
    project_rules = {rule for _, rule in served if rule.startswith("/api/projects/<slug>")}
    assert len(project_rules) >= 30  # a sanity floor: the url_map really was read


def test_the_spec_permission_table_is_the_services() -> None:
    from bugs.access import PERMISSIONS, ROLE_DEFAULTS

    assert tuple(PERMISSIONS) == SPEC_PERMISSIONS
    assert dict(ROLE_DEFAULTS) == SPEC_ROLE_DEFAULTS


def test_the_foreign_rows_are_there_to_leak(env: Env) -> None:
    """The leak checks look for the foreign project's marker: it must be in that project's
    own lists, or they would prove nothing."""
    foreign, outsider = env.worlds["foreign"], env.u("outsider")
    with env.clients.batch() as new:
        api = new()
        for rest in ("/bugs", "/labels", "/changelogs", "/team/invitations", "/public/bugs",
                     "/public/changelogs"):
            resp = api.get(foreign.url(rest), headers=outsider.headers)
            assert resp.status_code == 200 and env.marker in resp.text.lower(), rest
        similar = api.post(foreign.url("/bugs/similar"), headers=outsider.headers,
                           json={"title": "Player falls through the bridge floor"})
        assert env.marker in similar.text.lower()
        assert wait_for(lambda: env.marker in api.get(
            foreign.url("/team"), headers=outsider.headers).text.lower())


# ---- the matrix, one family at a time ------------------------------------------------------------

def test_matrix_projects_and_api_keys(env: Env) -> None:
    check_family(env, "projects", env.worlds["main"])


def test_matrix_bugs(env: Env) -> None:
    check_family(env, "bugs", env.worlds["main"])


def test_matrix_labels(env: Env) -> None:
    check_family(env, "labels", env.worlds["main"])


def test_matrix_team_and_permissions(env: Env) -> None:
    check_family(env, "team", env.worlds["main"])


def test_matrix_tracker_branding_changelogs(env: Env) -> None:
    check_family(env, "settings", env.worlds["main"])


def test_matrix_public_routes_with_the_tracker_off_and_on(env: Env) -> None:
    assert not env.worlds["main"].tracker_enabled and env.worlds["public"].tracker_enabled
    check_family(env, "public", env.worlds["main"], env.worlds["public"])


def test_matrix_sdk_routes(env: Env) -> None:
    check_family(env, "sdk", env.worlds["main"])


def test_another_projects_ids_are_404_in_every_path(env: Env) -> None:
    """The owner holds every permission, yet an id of another project in any path parameter
    (the others valid) is 404, never acted upon."""
    foreign, owner = env.worlds["foreign"], env.u("owner")
    theirs = foreign_ids(env)
    problems, tried = [], 0
    for route in ROUTES:
        params = [p for p in path_params(route.path) if p not in ("slug", "token")]
        if not params or route.rule.kind in ("explicit", "bearer"):
            continue
        world = env.worlds["public" if route.rule.kind in ("public", "upvote") else "main"]
        for param in params:
            with env.clients.batch() as new:
                cell = Cell(env=env, world=world, role="owner", actor=owner, setup=new(), new=new)
                cell.ids = ({"slug": world.slug} | (route.ids(cell) if route.ids else {})
                            | {param: theirs[param]})
                resp = new().request(route.method, fill(route.path, cell.ids),
                                     headers=owner.headers,
                                     **(route.send(cell) if route.send else {}))
                tried += 1
                if resp.status_code != 404 or resp.json().get("ok") is not False:
                    problems.append(f"{route.label} with their {param}: {resp.status_code} "
                                    f"{resp.text[:120]}")
    assert tried >= 40
    assert not problems, "another project's ids were accepted:\n" + "\n".join(problems)
    with env.clients.batch() as new:  # ...and nothing of theirs changed hands or vanished
        api, outsider = new(), env.u("outsider").headers
        for rest in (f"/bugs/{theirs['bug_id']}", f"/changelogs/{theirs['changelog_id']}"):
            assert api.get(foreign.url(rest), headers=outsider).status_code == 200, rest
        labels = api.get(foreign.url("/labels"), headers=outsider).json()["data"]
        assert theirs["label_id"] in [label["id"] for label in labels]
        invitations = api.get(foreign.url("/team/invitations"), headers=outsider).json()["data"]
        assert theirs["invitation_id"] in [i["id"] for i in invitations]
        mine = api.get(env.worlds["main"].url(), headers=owner.headers).json()["data"]
        assert mine["role"] == "owner"


def test_another_projects_ids_in_bodies_are_refused(env: Env) -> None:
    main, owner = env.worlds["main"], env.u("owner")
    theirs = foreign_ids(env)
    with env.clients.batch() as new:
        setup, api = new(), new()
        bug = env.new_bug(setup, main, priority="low")
        attach = api.post(main.url(f"/bugs/{bug}/labels"), headers=owner.headers,
                          json={"label_id": theirs["label_id"]})
        assert_envelope_error(attach, 404)
        bulk = api.post(main.url("/bugs/bulk"), headers=owner.headers,
                        json={"bug_ids": [bug, theirs["bug_id"]], "priority": "critical"})
        assert_envelope_error(bulk, 404)
        assert api.get(main.url(f"/bugs/{bug}"), headers=owner.headers).json()["data"][
            "priority"] == "low"  # all or nothing
        assign = api.patch(main.url(f"/bugs/{bug}"), headers=owner.headers,
                           json={"assignee": theirs["user_id"]})
        assert_envelope_error(assign, 400)
        notes = api.post(main.url("/changelogs"), headers=owner.headers, json={
            "version": "3.0.0", "title": "Cross-project", "bug_ids": [theirs["bug_id"]]})
        assert_envelope_error(notes, 400)
        replay = new().post("/session-replays", headers={"X-API-Key": main.api_key},
                            data={"bug_report_id": theirs["bug_id"]},
                            files={"file": ("r.json", b"[]", "application/json")})
        assert_envelope_error(replay, 404)
        theirs_now = new().get(env.worlds["foreign"].url(f"/bugs/{theirs['bug_id']}"),
                               headers=env.u("outsider").headers).json()["data"]
        assert theirs_now["priority"] == "medium" and theirs_now["attachments"] == []


# ---- single flows through Envoy ------------------------------------------------------------------

def test_public_routes_follow_the_tracker_switch(env: Env) -> None:
    world = env.create_world("Matrix Switch", env.u("owner"))
    with env.clients.batch() as new:
        setup, player = new(), new()
        bug_id = env.new_bug(setup, world, title="Visible to players")
        env.publish(setup, world, bug_id)
        env.new_changelog(setup, world, published=True)
        paths = ["/public/tracker", "/public/bugs", f"/public/bugs/{bug_id}",
                 "/public/changelogs", "/public/branding"]

        def statuses() -> list[int]:
            return [player.get(world.url(p)).status_code for p in paths]

        assert statuses() == [404] * 5  # off by default
        env.enable_tracker(setup, world, True)
        assert statuses() == [200] * 5
        listed = player.get(world.url("/public/bugs")).json()["data"]
        assert [b["id"] for b in listed] == [bug_id]
        env.enable_tracker(setup, world, False)
        for p in paths:
            assert_envelope_error(player.get(world.url(p)), 404)
        # ...and a disabled tracker answers exactly like a project that does not exist
        gone = player.get(f"/projects/no-such-{uuid.uuid4().hex[:8]}/public/bugs")
        assert gone.status_code == 404
        assert gone.json()["error"] == player.get(world.url("/public/bugs")).json()["error"]


def test_upvote_is_one_vote_per_client_and_private_bugs_only_for_members(env: Env) -> None:
    world = env.worlds["public"]
    with env.clients.batch() as new:
        setup = new()
        public_bug = env.new_bug(setup, world, title="Upvote me")
        env.publish(setup, world, public_bug)
        private_bug = env.new_bug(setup, world, title="Members only")
        url = world.url(f"/bugs/{public_bug}/upvote")

        first = new()
        assert first.post(url).json()["data"]["votes"] == 1
        again = first.post(url)  # same client (address + user agent): no second vote
        assert again.status_code == 200 and again.json()["data"]["votes"] == 1
        assert new().post(url).json()["data"]["votes"] == 2  # another player
        signed_in = new()
        member_headers = env.u("member").headers
        assert signed_in.post(url, headers=member_headers).json()["data"]["votes"] == 3
        assert new().post(url, headers=member_headers).json()["data"]["votes"] == 3  # same user
        assert new().post(url, headers=env.u("outsider").headers).json()["data"]["votes"] == 4

        private = world.url(f"/bugs/{private_bug}/upvote")
        assert_envelope_error(new().post(private), 404)
        assert_envelope_error(new().post(private, headers=env.u("outsider").headers), 404)
        assert new().post(private, headers=member_headers).json()["data"]["votes"] == 1
        detail = setup.get(world.url(f"/bugs/{public_bug}"), headers=world.owner.headers)
        assert detail.json()["data"]["votes"] == 4


def test_invitation_accept_needs_the_invited_email_and_is_single_use(env: Env) -> None:
    world = env.create_world("Matrix Invite", env.u("owner"))
    joiner, outsider = env.u("joiner"), env.u("outsider")
    with env.clients.batch() as new:
        setup = new()
        inv = expect(setup.post(world.url("/team/invitations"), headers=world.owner.headers,
                                json={"email": joiner.email.upper(), "role": "admin"}),
                     201, "invite")["data"]
        accept = f"/invitations/{inv['token']}/accept"
        assert_envelope_error(new().post(accept), 401)
        mismatch = assert_envelope_error(new().post(accept, headers=outsider.headers), 403)
        assert "email" in mismatch["error"]
        assert_envelope_error(new().get(world.url(), headers=outsider.headers), 404)

        joined = new().post(accept, headers=joiner.headers)
        assert joined.status_code == 200, joined.text
        assert joined.json()["data"]["role"] == "admin"
        assert joined.json()["data"]["project"]["slug"] == world.slug
        reused = new().post(accept, headers=joiner.headers)
        assert reused.status_code in (409, 410), reused.text  # single use
        assert_envelope_error(new().post(f"/invitations/{uuid.uuid4().hex}/accept",
                                         headers=joiner.headers), 404)

        def shows_the_invitee() -> bool:  # the bugs worker learns users from user_registered
            team = setup.get(world.url("/team"), headers=world.owner.headers).json()["data"]
            return any(m["user_id"] == joiner.id and m["display_name"] == joiner.display_name
                       and m["role"] == "admin" for m in team)

        assert wait_for(shows_the_invitee), "the team list never showed the invitee's name"


def test_sdk_key_submits_and_a_regenerated_key_is_refused_within_2_seconds(env: Env) -> None:
    world = env.create_world("Matrix Keys", env.u("owner"))
    old = {"X-API-Key": world.api_key}
    report = {"title": "Key rotation report", "category": "gameplay", "platform": "Windows"}
    with env.clients.batch() as new:
        game, setup = new(), new()
        settings = game.get("/bugs/settings", headers=old)
        assert settings.status_code == 200
        assert set(settings.json()["data"]) == {"screenshot_capture", "session_capture",
                                                "auto_file_errors"}
        submitted = game.post("/bugs/submit", headers=old, json=report)
        assert submitted.status_code == 201, submitted.text
        seen = setup.get(world.url(f"/bugs/{submitted.json()['data']['id']}"),
                         headers=world.owner.headers)
        assert seen.status_code == 200 and seen.json()["data"]["source"] == "sdk"

        regenerated = setup.post(world.url("/api-key/regenerate"), headers=world.owner.headers)
        assert regenerated.status_code == 200, regenerated.text
        rotated_at = time.monotonic()
        fresh_key = regenerated.json()["data"]["api_key"]
        assert fresh_key.startswith("sk_live_") and fresh_key != world.api_key

        late = new()  # a fresh bucket: the poll below must not be rate limited
        while True:
            status = late.post("/bugs/submit", headers=old, json=report).status_code
            if status == 401 or time.monotonic() - rotated_at > 2.5:
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - rotated_at
        assert status == 401 and elapsed < 2.0, f"old key still {status} after {elapsed:.2f}s"
        assert_envelope_error(late.get("/bugs/settings", headers=old), 401)
        assert new().post("/bugs/submit", headers={"X-API-Key": fresh_key},
                          json=report).status_code == 201
        masked = setup.get(world.url("/api-key"), headers=world.owner.headers).json()["data"]
        assert masked["api_key"] != fresh_key and masked["api_key"].endswith(fresh_key[-4:])


def test_v1_prefix_authorizes_alike(env: Env) -> None:
    world = env.worlds["main"]
    member, outsider = env.u("member").headers, env.u("outsider").headers
    with env.clients.new(env.clients.base_url + "/v1") as v1:
        assert v1.get(world.url(), headers=member).status_code == 200
        assert_envelope_error(v1.get(world.url(), headers=outsider), 404)
        assert_envelope_error(v1.get(world.url("/labels")), 401)
        assert_envelope_error(v1.post(world.url("/labels"), headers=member,
                                      json={"name": "v1", "color": "#000000"}), 403)
