"""The CLI without servers: the demo plan meets the regression rules, the pacer follows the
gateway's figures, and the output and arguments read as documented."""

from __future__ import annotations

import base64
import io
import json
import shlex
import struct
import time
import zlib
from collections import Counter
from typing import Any

import httpx
import pytest

from bugnet_cli import account, client, demo, demo_data, main, output
from bugs.sdk.fingerprint import fingerprint

# -- the demo plan --------------------------------------------------------------------------


def nearest_rank_p50(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) // 2) - 1)]


def release_figures(plan: demo_data.Plan) -> dict[str, tuple[int, int]]:
    started: Counter[str] = Counter()
    crashed: Counter[str] = Counter()
    for steps in plan.sessions:
        version = steps[0][1]["game_version"]
        started[version] += 1
        crashed[version] += any(path == "/sessions/end" and body["crashed"]
                                for path, body in steps)
    return {v: (started[v], crashed[v]) for v in demo_data.VERSIONS}


def test_default_plan_meets_every_regression_rule_for_the_last_release_only() -> None:
    plan = demo_data.build_plan()
    figures = release_figures(plan)
    assert all(sessions == 100 for sessions, _ in figures.values())
    rates = {v: (s - c) / s * 100 for v, (s, c) in figures.items()}
    assert rates["1.1.0"] - rates["1.2.0"] > 1  # crash_rate fires for 1.2.0 ...
    assert rates["1.0.0"] - rates["1.1.0"] <= 1  # ... and not for 1.1.0
    p50 = {v: nearest_rank_p50([s["frame_time_ms"] for s in plan.snapshots
                                if s["game_version"] == v]) for v in demo_data.VERSIONS}
    counts = Counter(s["game_version"] for s in plan.snapshots)
    assert all(counts[v] == 50 for v in demo_data.VERSIONS)
    assert p50["1.2.0"] >= 1.2 * p50["1.1.0"]
    assert p50["1.1.0"] < 1.2 * p50["1.0.0"]


def test_plan_scales_and_counts_its_sdk_requests() -> None:
    plan = demo_data.build_plan(sessions_per_release=150, snapshots_per_release=60)
    assert len(plan.sessions) == 450 and len(plan.snapshots) == 180
    ends = sum(len(steps) - 1 for steps in plan.sessions)
    assert ends == sum(plan.crashed.values()) == 3 + 2 + 11
    assert plan.sdk_requests == 1 + len(plan.reports) + 450 + ends + 180
    tokens = [steps[0][1]["session_token"] for steps in plan.sessions]
    assert len(set(tokens)) == len(tokens)


def test_reports_group_into_four_crash_signatures_and_the_save_crash_comes_back() -> None:
    plan = demo_data.build_plan()
    assert 25 <= len(plan.reports) <= 35
    crashes = [r for r in plan.reports if r.body["category"] == "crash"]
    prints: dict[str, set[str]] = {}
    for r in crashes:
        prints.setdefault(r.bug, set()).add(
            fingerprint(title=r.body["title"], description=r.body["description"]))
    assert set(prints) == {"inventory", "save", "vulkan", "audio"}
    assert all(len(p) == 1 for p in prints.values()), prints  # one bug per signature
    assert len(set().union(*prints.values())) == 4
    # phase one ends with 1.1.0; the save crash recurs in 1.2.0, after the triage resolved it
    assert {r.body["game_version"] for r in plan.reports_first} == {"1.0.0", "1.1.0"}
    assert {r.body["game_version"] for r in plan.reports_later} == {"1.2.0"}
    assert demo_data.TRIAGE["save"].status == "resolved"
    assert any(r.bug == "save" for r in plan.reports_later)
    categories = {r.body["category"] for r in plan.reports}
    assert len(categories) >= 7


def test_screenshots_are_real_pngs_in_data_uris() -> None:
    plan = demo_data.build_plan()
    shots = [r.body["screenshot"] for r in plan.reports if "screenshot" in r.body]
    assert len(shots) == 2
    prefix = "data:image/png;base64,"
    raw = base64.b64decode(shots[0].removeprefix(prefix))
    assert shots[0].startswith(prefix) and raw.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", raw[16:24])
    idat_len = struct.unpack(">I", raw[33:37])[0]
    pixels = zlib.decompress(raw[41:41 + idat_len])
    assert len(pixels) == height * (1 + 3 * width)
    assert not any(r.body.get("screenshot") for r in demo_data.build_plan(
        screenshots=False).reports)


# -- pacing ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def headers(limit: int, remaining: int) -> dict[str, str]:
    return {"x-ratelimit-limit": str(limit), "x-ratelimit-remaining": str(remaining)}


def send(pacer: client.Pacer, limit: int, remaining: int) -> float:
    """One request: reserve its slot, get the gateway's answer."""
    wait = pacer.reserve()
    pacer.answered(headers(limit, remaining))
    return wait


def test_pacer_bursts_while_tokens_remain_then_goes_at_the_refill_rate() -> None:
    clock = FakeClock()
    pacer = client.Pacer(clock)
    assert send(pacer, 30, 2) == 0  # nothing known before the first answer
    assert [send(pacer, 30, 1), send(pacer, 30, 0)] == [0, 0]
    # the bucket is empty now: one request every 2 s (30 a minute), queued in order
    assert [pacer.reserve() for _ in range(3)] == [2.0, 4.0, 6.0]
    assert pacer.paced_seconds == 6.0
    for _ in range(3):
        pacer.answered(headers(30, 0))
    clock.now += 6 + 60  # they went; then a minute passes and the bucket is full again
    assert [send(pacer, 30, 29 - i) for i in range(30)] == [0] * 30
    assert pacer.reserve() == 2.0
    assert pacer.paced_seconds == 8.0


def test_the_gateways_lower_figure_wins_a_higher_one_does_not() -> None:
    pacer = client.Pacer(FakeClock())
    send(pacer, 30, 29)
    assert pacer.tokens == 29
    send(pacer, 30, 10)  # another client on this address spent some
    assert pacer.tokens == 10
    waits = [pacer.reserve() for _ in range(3)]  # in flight, unanswered
    pacer.answered(headers(30, 9))  # an answer older than the other two: 9 is stale
    assert waits == [0, 0, 0] and pacer.tokens == 7


def test_until_the_first_answer_one_request_goes_at_a_time() -> None:
    pacer = client.Pacer(FakeClock(), first_answer_timeout=0.05)
    pacer.reserve()
    started = time.monotonic()
    pacer.reserve()  # waits for the first answer (here: until the timeout)
    assert time.monotonic() - started >= 0.04
    pacer.answered(None)  # a request that failed in transit still counts as answered
    started = time.monotonic()
    pacer.reserve()
    assert time.monotonic() - started < 0.04


def test_a_429_holds_the_retry_for_retry_after() -> None:
    clock = FakeClock()
    pacer = client.Pacer(clock)
    send(pacer, 30, 10)
    pacer.reserve()
    pacer.answered(headers(30, 0))
    pacer.throttled(5)
    assert pacer.rate_limited == 1
    assert pacer.reserve() == 5
    assert pacer.paced_seconds == 5
    unknown = client.Pacer(clock)  # a 429 before any limit is known still waits
    unknown.reserve()
    unknown.answered({})
    unknown.throttled(3)
    assert unknown.reserve() == 3


def test_retry_after_prefers_the_header_then_the_reset_time() -> None:
    req = httpx.Request("GET", "http://x/api")
    assert client.retry_after_seconds(httpx.Response(429, headers={"Retry-After": "3"},
                                                     request=req)) == 3
    reset = httpx.Response(429, headers={"X-RateLimit-Reset": "1010"}, request=req)
    assert client.retry_after_seconds(reset, now=1000.0) == 10
    assert client.retry_after_seconds(httpx.Response(429, request=req)) == 1


@pytest.mark.parametrize(("path", "hdrs", "cls"), [
    ("/auth/login", {}, "login"),
    ("/projects", {"Authorization": "Bearer t"}, "user"),
    ("/sessions/start", {"X-API-Key": "k"}, "public"),
    ("/projects/x/public/bugs", {}, "public"),
])
def test_requests_are_paced_in_the_gateways_rate_class(path: str, hdrs: dict[str, str],
                                                        cls: str) -> None:
    assert client.rate_class(path, hdrs) == cls


def test_estimate_counts_the_burst_then_the_refill_rate() -> None:
    assert demo.estimate_seconds(491, 30, 29) == pytest.approx((491 - 29) * 2)
    assert demo.estimate_seconds(491, 1000, 999) == 0
    assert demo.estimate_seconds(10, None, None) == 0
    assert demo.format_duration(42) == "42 s"
    assert demo.format_duration(924) == "15 min"


# -- arguments and output -------------------------------------------------------------------


def test_slugs_match_the_bugs_service() -> None:
    assert account.slugify("My Game!") == "my-game"
    assert account.slugify("Café Ü") == "cafe-u"
    assert account.slugify("X") == "x-project"
    assert account.check_slug("demo-game") == "demo-game"
    for bad in ("ab", "Demo", "a--b", "-ab", "ab-"):
        with pytest.raises(client.CliError):
            account.check_slug(bad)


def test_init_requires_a_project_and_demo_has_defaults() -> None:
    parser = main.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["init", "--email", "a@example.com"])
    args = parser.parse_args(["demo", "--json"])
    assert (args.slug, args.sessions, args.snapshots, args.json, args.reset) == (
        "demo-game", 100, 50, True, False)


def test_too_few_sessions_is_refused_before_any_request(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    code = main.main(["demo", "--sessions", "50", "--url", "http://127.0.0.1:9"])
    assert code == 1
    assert "at least 100" in capsys.readouterr().err


def test_unreachable_server_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main.main(["init", "--email", "a@example.com", "--password", "long enough pw",
                      "--project", "My Game", "--url", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot reach Bugnet at http://127.0.0.1:9" in err and "Traceback" not in err


def test_missing_password_without_a_terminal_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUGNET_PASSWORD", raising=False)
    args = main.build_parser().parse_args(["init", "--email", "a@example.com",
                                           "--project", "P x"])
    with pytest.raises(client.CliError, match="no password"):
        main.resolve_password(args, stdin=io.StringIO())
    monkeypatch.setenv("BUGNET_PASSWORD", "from the env")
    assert main.resolve_password(args, stdin=io.StringIO()) == "from the env"


def test_regenerate_hint_is_a_pasteable_command() -> None:
    args = main.build_parser().parse_args(["init", "--email", "ada@example.com", "--project",
                                           "Ada's Game", "--url", "http://h:1"])
    words = shlex.split(main.regenerate_command(args))
    assert words == ["bugnet", "init", "--email", "ada@example.com", "--project", "Ada's Game",
                     "--url", "http://h:1", "--regenerate-key"]


def test_submit_curl_is_valid_shell_with_a_json_body() -> None:
    words = shlex.split(output.submit_curl("http://127.0.0.1:8080", "sk_live_abc'd"))
    assert words[:3] == ["curl", "-X", "POST"]
    assert "http://127.0.0.1:8080/api/bugs/submit" in words
    assert "X-API-Key: sk_live_abc'd" in words
    body = json.loads(words[words.index("-d") + 1])
    assert body["title"] and body["category"] == "other"
    assert "$BUGNET_API_KEY" in output.submit_curl("http://h", None)


def _account(created: bool) -> account.Account:
    return account.Account(user={"id": "u1", "email": "ada@example.com"}, token="tok",
                           created=created)


def test_init_text_for_a_new_and_for_an_existing_project() -> None:
    project: dict[str, Any] = {"id": "p1", "name": "My Game", "slug": "my-game", "role": "owner"}
    fresh = output.init_text(base_url="http://h", account=_account(True),
                             result=account.ProjectResult(project, True, "sk_live_KEY",
                                                          "sk_live_…_KEY"),
                             regenerate_command="bugnet init … --regenerate-key")
    assert "Signed up as ada@example.com." in fresh
    assert "API key (new): sk_live_KEY" in fresh and "shown only this once" in fresh
    assert "X-API-Key: sk_live_KEY" in fresh
    again = output.init_text(base_url="http://h", account=_account(False),
                             result=account.ProjectResult(project, False, None, "sk_live_…WXYZ"),
                             regenerate_command="bugnet init … --regenerate-key")
    assert "Logged in as ada@example.com (existing account)." in again
    assert "already exists; reusing it (your role: owner)" in again
    assert "sk_live_…WXYZ" in again and "--regenerate-key" in again
    assert "$BUGNET_API_KEY" in again
    doc = output.init_json(base_url="http://h", account=_account(False),
                           result=account.ProjectResult(project, False, None, "sk_live_…WXYZ"))
    assert doc["api_key"] is None and doc["project"]["created"] is False
    assert doc["project"]["slug"] == "my-game" and doc["user"]["created"] is False


def test_regressions_read_as_sentences() -> None:
    numbers = {"b1": 7}
    assert output.describe_regression(
        {"kind": "recurrence", "version": "1.2.0", "previous_version": "1.1.0",
         "bug_id": "b1", "details": {}}, numbers).endswith("bug #7 came back after it was "
                                                           "resolved")
    line = output.describe_regression(
        {"kind": "crash_rate", "version": "1.2.0", "previous_version": "1.1.0",
         "details": {"crash_free_rate": 93.0, "previous_crash_free_rate": 99.0}}, numbers)
    assert "crash-free 93.00%, was 99.00%" in line
