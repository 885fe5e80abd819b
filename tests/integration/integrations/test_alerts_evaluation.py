"""Alert evaluation from bus events: conditions, filters, thresholds, cooldown, and what a
firing does (firing row, alert_triggered event, deliveries, in-app notifications, emails).

The consumers' handler runs on the real database the way the worker runs it; the last test
sends the events through NATS to a real worker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from integration.integrations.alerts_support import (
    at,
    bug_created,
    crash_free_dropped,
    crash_spike,
    evaluate_event,
    outbox,
    publish,
    regression,
    rows,
)
from integration.integrations.support import Project, User, apply, event

from bugnet_common.bus import subjects
from bugnet_common.bus.worker import Worker
from bugnet_common.db import Database
from integrations import crypto
from integrations.models import DiscordIntegration, Webhook
from integrations.settings import IntegrationsSettings
from servers import NatsInfo


@pytest.fixture()
def team(user: Callable[..., User], project: Callable[..., Project],
         member: Callable[..., None]) -> tuple[Project, User, User, User]:
    """A project with its owner, a member (bugs.view, analytics.view) and a member who may
    see bugs but not analytics."""
    owner, dev, tester = user("Owner"), user("Dev"), user("Tester")
    p = project(owner)
    member(p, dev, "member")
    member(p, tester, "member", permissions=["bugs.view", "bugs.create"])
    return p, owner, dev, tester


@pytest.fixture()
def make_rule(client: FlaskClient, team: tuple[Project, User, User, User]
              ) -> Callable[..., dict[str, Any]]:
    p, owner, _, _ = team

    def make(**body: Any) -> dict[str, Any]:
        body = {"name": "Rule", "condition": "new_bug", "channels": ["in_app"], **body}
        resp = client.post(f"/api/projects/{p.slug}/alerts", json=body, headers=owner.headers)
        assert resp.status_code == 201, resp.json
        return resp.json["data"]  # type: ignore[no-any-return]

    return make


def firings(db: Database, rule: dict[str, Any]) -> list[dict[str, Any]]:
    return rows(db, "SELECT * FROM alert_firings WHERE alert_id = :a ORDER BY triggered_at",
                a=rule["id"])


Run = Callable[[Any], list[str]]


@pytest.fixture()
def run(integrations_db: Database, integrations_settings: IntegrationsSettings) -> Run:
    return lambda event: evaluate_event(integrations_db, integrations_settings, event)


def test_new_bug_fires_once_per_window_and_again_after_the_cooldown(
        team: tuple[Project, User, User, User], make_rule: Callable[..., dict[str, Any]],
        run: Run, integrations_db: Database) -> None:
    p = team[0]
    rule = make_rule(window_minutes=60)
    assert len(run(bug_created(p, number=1, when=at(0)))) == 1
    assert run(bug_created(p, number=2, when=at(10))) == []  # the same incident
    assert run(bug_created(p, number=3, when=at(59))) == []
    assert len(run(bug_created(p, number=4, when=at(61)))) == 1
    fired = firings(integrations_db, rule)
    assert [f["details"]["bug"]["number"] for f in fired] == [1, 4]
    assert [f["suppressed"] for f in fired] == [2, 0]


def test_a_replayed_event_does_not_fire_or_count_twice(
        team: tuple[Project, User, User, User], make_rule: Callable[..., dict[str, Any]],
        run: Run, integrations_db: Database) -> None:
    p = team[0]
    rule = make_rule(threshold=2, window_minutes=5)
    first = bug_created(p, number=1, when=at(0))
    assert run(first) == [] and run(first) == []  # counted once: 1 of 2
    assert len(run(bug_created(p, number=2, when=at(1)))) == 1
    assert firings(integrations_db, rule)[0]["value"] == 2


def test_threshold_counts_matching_bugs_within_the_window(
        team: tuple[Project, User, User, User], make_rule: Callable[..., dict[str, Any]],
        run: Run, integrations_db: Database) -> None:
    p = team[0]
    rule = make_rule(threshold=3, window_minutes=10, filters={"priority": ["high", "critical"]})
    assert run(bug_created(p, number=1, priority="high", when=at(0))) == []
    assert run(bug_created(p, number=2, priority="low", when=at(1))) == []  # filtered out
    assert run(bug_created(p, number=3, priority="critical", when=at(3))) == []
    # The first bug left the 10-minute window: still two.
    assert run(bug_created(p, number=4, priority="high", when=at(11))) == []
    assert len(run(bug_created(p, number=5, priority="high", when=at(12)))) == 1
    (fired,) = firings(integrations_db, rule)
    assert fired["value"] == 3 and fired["threshold"] == 3


def test_category_filter_and_disabled_rules(team: tuple[Project, User, User, User],
                                            make_rule: Callable[..., dict[str, Any]],
                                            run: Run) -> None:
    p = team[0]
    make_rule(filters={"category": "crash"})
    make_rule(name="Off", enabled=False)
    assert run(bug_created(p, category="visual", when=at(0))) == []
    assert len(run(bug_created(p, category="crash", when=at(1)))) == 1


def test_new_crash_signature_fires_for_crash_bugs_only(
        team: tuple[Project, User, User, User], make_rule: Callable[..., dict[str, Any]],
        run: Run, integrations_db: Database) -> None:
    p = team[0]
    rule = make_rule(condition="new_crash_signature", window_minutes=1)
    assert run(bug_created(p, when=at(0))) == []  # no fingerprint: not a crash
    assert len(run(bug_created(p, source="sdk", category="crash", fingerprint="ab" * 32,
                               when=at(1)))) == 1
    (fired,) = firings(integrations_db, rule)
    assert fired["details"]["fingerprint"] == "ab" * 32


def test_crash_spike_compares_crashed_sessions_with_the_threshold(
        team: tuple[Project, User, User, User], make_rule: Callable[..., dict[str, Any]],
        run: Run, integrations_db: Database) -> None:
    p = team[0]
    rule = make_rule(condition="crash_spike", threshold=25, window_minutes=30)
    assert run(crash_spike(p, crashed=10, when=at(0))) == []
    assert len(run(crash_spike(p, crashed=40, when=at(1)))) == 1
    assert run(crash_spike(p, crashed=80, when=at(20))) == []  # cooldown
    assert len(run(crash_spike(p, crashed=30, when=at(40)))) == 1
    assert [f["value"] for f in firings(integrations_db, rule)] == [40, 30]


def test_crash_free_below_compares_the_rate_with_the_threshold(
        team: tuple[Project, User, User, User], make_rule: Callable[..., dict[str, Any]],
        run: Run, integrations_db: Database) -> None:
    p = team[0]
    rule = make_rule(condition="crash_free_below", threshold=99.0, window_minutes=60)
    assert run(crash_free_dropped(p, rate=99.0, when=at(0))) == []  # not below
    assert len(run(crash_free_dropped(p, rate=97.3456, when=at(1)))) == 1
    (fired,) = firings(integrations_db, rule)
    assert fired["details"]["crash_free_rate"] == 97.35
    assert fired["details"]["game_version"] == "1.2.0"


def test_regression_detected_with_a_kind_filter(
        team: tuple[Project, User, User, User], make_rule: Callable[..., dict[str, Any]],
        run: Run, integrations_db: Database) -> None:
    p = team[0]
    rule = make_rule(condition="regression_detected", filters={"kind": "crash_rate"},
                     window_minutes=1)
    assert run(regression(p, kind="frame_time", when=at(0))) == []
    assert len(run(regression(p, kind="crash_rate", bug_id=None, when=at(1)))) == 1
    assert firings(integrations_db, rule)[0]["details"]["kind"] == "crash_rate"


def test_events_older_than_a_day_do_not_alert(
        team: tuple[Project, User, User, User], make_rule: Callable[..., dict[str, Any]],
        run: Run, integrations_db: Database) -> None:
    p = team[0]
    rule = make_rule()
    assert run(bug_created(p, when=at(-25 * 60))) == []  # a replayed history
    assert firings(integrations_db, rule) == []
    assert len(run(bug_created(p, when=at(0)))) == 1


def test_rules_of_other_projects_and_unknown_projects_are_left_alone(
        team: tuple[Project, User, User, User], make_rule: Callable[..., dict[str, Any]],
        run: Run, project: Callable[..., Project], user: Callable[..., User]) -> None:
    make_rule()
    other = project(user("Someone"), name="Other")
    assert run(bug_created(other, when=at(0))) == []
    ghost = Project(id="00000000-0000-4000-8000-000000000000", slug="ghost", name="Ghost")
    assert run(bug_created(ghost, when=at(0))) == []


def test_a_firing_emits_alert_triggered_and_notifies_in_app_by_permission(
        client: FlaskClient, team: tuple[Project, User, User, User],
        make_rule: Callable[..., dict[str, Any]], run: Run,
        integrations_db: Database) -> None:
    p, owner, dev, tester = team
    rule = make_rule(name="Crash spike", condition="crash_spike", threshold=5)
    (firing_id,) = run(crash_spike(p, crashed=40, sessions=200, when=at(0)))
    (emitted,) = outbox(integrations_db, subjects.ALERT_TRIGGERED)
    assert emitted["firing_id"] == firing_id and emitted["alert_id"] == rule["id"]
    assert (emitted["project_slug"], emitted["condition"], emitted["threshold"],
            emitted["value"], emitted["channels"]) == (p.slug, "crash_spike", 5, 40, ["in_app"])
    assert emitted["details"]["baseline_crashed"] == 3.5
    # analytics.view: owner and dev, not the tester.
    for who, count in ((owner, 1), (dev, 1), (tester, 0)):
        listed = client.get("/api/notifications", headers=who.headers).json
        assert listed["meta"]["total"] == count, who
    note = client.get("/api/notifications", headers=dev.headers).json["data"][0]
    assert note["event"] == "alert_triggered" and "Crash spike" in note["title"]
    assert "40 of 200 sessions crashed" in note["body"]
    assert note["data"]["firing_id"] == firing_id and note["project"]["slug"] == p.slug
    assert note["url"] == f"https://bugnet.test/api/projects/{p.slug}/alerts/{rule['id']}/firings"


def test_the_bug_reporter_is_not_alerted_about_their_own_bug(
        client: FlaskClient, team: tuple[Project, User, User, User],
        make_rule: Callable[..., dict[str, Any]], run: Run) -> None:
    p, owner, dev, tester = team
    make_rule()
    run(bug_created(p, when=at(0), actor_id=dev.id, reporter_user_id=dev.id))
    assert client.get("/api/notifications", headers=dev.headers).json["meta"]["total"] == 0
    for who in (owner, tester):
        assert client.get("/api/notifications", headers=who.headers).json["meta"]["total"] == 1


def test_webhook_and_discord_channels_become_deliveries_of_their_channel_only(
        team: tuple[Project, User, User, User], make_rule: Callable[..., dict[str, Any]],
        run: Run, integrations_db: Database,
        integrations_settings: IntegrationsSettings) -> None:
    p = team[0]
    secret = crypto.encrypt(integrations_settings.secret(), "s3cret")
    with integrations_db.begin() as session:
        session.add(Webhook(id="00000000-0000-4000-8000-00000000000a", project_id=p.id,
                            url="http://127.0.0.1:9/hook", events=["alert_triggered"],
                            secret_encrypted=secret))
        session.add(DiscordIntegration(
            project_id=p.id, events=["alert_triggered"], webhook_url_hint="…",
            webhook_url_encrypted=crypto.encrypt(integrations_settings.secret(),
                                                 "http://127.0.0.1:9/api/webhooks/1/x")))
    webhook_rule = make_rule(name="To the webhook", channels=["webhook"])
    discord_rule = make_rule(name="To Discord", condition="crash_spike", channels=["discord"])
    (hook_firing,) = run(bug_created(p, number=7, title="Boom", when=at(0)))
    (discord_firing,) = run(crash_spike(p, when=at(0)))
    deliveries = rows(integrations_db, "SELECT channel, event, body FROM deliveries "
                                       "ORDER BY created_at")
    assert [(d["channel"], d["event"]) for d in deliveries] == [
        ("webhook", "alert_triggered"), ("discord", "alert_triggered")]
    payload = json.loads(deliveries[0]["body"])
    assert payload["event"] == "alert_triggered" and payload["project"] == p.slug
    data = payload["data"]
    assert data["id"] == hook_firing and data["alert_id"] == webhook_rule["id"]
    assert data["name"] == "To the webhook" and data["condition"] == "new_bug"
    assert data["details"]["bug"]["title"] == "Boom" and data["url"].startswith("https://")
    embed = json.loads(deliveries[1]["body"])["embeds"][0]
    assert embed["title"] == "Alert: To Discord"
    assert "Crash spike" in embed["description"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Id"] == discord_firing and fields["Alert id"] == discord_rule["id"]


def test_project_deletion_takes_rules_and_firings_with_it(
        team: tuple[Project, User, User, User], make_rule: Callable[..., dict[str, Any]],
        run: Run, integrations_db: Database) -> None:
    p = team[0]
    make_rule()
    run(bug_created(p, when=at(0)))
    apply(integrations_db, event(subjects.PROJECT_DELETED, project_id=p.id, slug=p.slug))
    for table in ("alert_rules", "alert_firings", "alert_observations", "notifications"):
        assert rows(integrations_db, f"SELECT count(*) AS n FROM {table}")[0]["n"] == 0


def test_the_worker_evaluates_events_from_the_bus(
        client: FlaskClient, team: tuple[Project, User, User, User],
        make_rule: Callable[..., dict[str, Any]], worker_factory: Callable[..., Worker],
        integrations_db: Database, nats: NatsInfo) -> None:
    p, _, dev, _ = team
    rule = make_rule(name="Crash-free", condition="crash_free_below", threshold=99.5)
    worker_factory()
    publish(nats.url, crash_free_dropped(p, rate=98.0))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not firings(integrations_db, rule):
        time.sleep(0.1)
    (fired,) = firings(integrations_db, rule)
    assert fired["value"] == 98.0
    while time.monotonic() < deadline and \
            client.get("/api/notifications", headers=dev.headers).json["meta"]["total"] == 0:
        time.sleep(0.1)
    assert client.get("/api/notifications", headers=dev.headers).json["meta"]["unread"] == 1
    # The alert_triggered event left through the outbox relay.
    while time.monotonic() < deadline and rows(
            integrations_db, "SELECT published_at FROM outbox WHERE subject = :s",
            s=subjects.ALERT_TRIGGERED)[0]["published_at"] is None:
        time.sleep(0.1)
    assert rows(integrations_db, "SELECT published_at FROM outbox WHERE subject = :s",
                s=subjects.ALERT_TRIGGERED)[0]["published_at"] is not None
