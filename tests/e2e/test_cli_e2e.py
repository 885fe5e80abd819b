"""The `bugnet` CLI against the whole stack behind Envoy, called in-process through `main()`
with the test's own httpx transport: `init` gives a key that works for an SDK submit and is
idempotent, a wrong password is one clear error, the client paces itself to the gateway's
limit, and `demo` fills a project with bugs, three releases and the regressions that
detection finds.

The stack is this file's own, with the SDK class raised to 600 requests a minute, as the README
tells a newcomer to do for a one-minute demo (the spec's 30 stretch the demo's ~500 SDK
requests from one address to 16 minutes; the pacing test shows the client living within a
limit). The user and login classes keep the spec's limits.
"""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from e2e.support import PASSWORD, auth

from bugnet_cli.client import Api
from bugnet_cli.main import main
from bugnet_gateway.render import RateLimits
from bugnet_stack import Ports, Stack
from servers import scratch_dir

pytestmark = pytest.mark.e2e

SDK_LIMIT = 600

# Source addresses of this file: each CLI run is a fresh client with fresh buckets.
_hosts = itertools.count(2)


def address() -> str:
    n = next(_hosts)
    return f"127.0.{200 + n // 250}.{n % 250 + 2}"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with scratch_dir("bugnet-e2e-cli-") as data_dir:
        s = Stack(data_dir=data_dir, ports=Ports.free(), durable=False,
                  limits=RateLimits(public=SDK_LIMIT), extra_env={"GUNICORN_WORKERS": "1"})
        try:
            s.up(timeout=180)
            yield s
        finally:
            s.down()


def run(args: list[str], transport: httpx.BaseTransport | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(args, transport=transport or httpx.HTTPTransport(local_address=address()),
                stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def email() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}@example.com"


def client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.urls.gateway + "/api", timeout=15,
                        transport=httpx.HTTPTransport(local_address=address()))


def test_init_prints_a_key_that_works_and_a_rerun_reuses_account_and_project(
        stack: Stack) -> None:
    url, who = stack.urls.gateway, email()
    base = ["init", "--url", url, "--email", who, "--password", PASSWORD,
            "--project", "CLI Game"]
    code, out, err = run([*base, "--json"])
    assert code == 0, err
    first = json.loads(out)
    key = first["api_key"]
    assert key.startswith("sk_live_")
    assert (first["user"]["created"], first["project"]["created"]) == (True, True)
    assert first["project"]["slug"] == "cli-game"

    # the printed curl is a working SDK submit, as pasted into a shell
    assert "X-API-Key: " + key in first["curl"]
    sent = subprocess.run(["bash", "-c", first["curl"] + " -s"], capture_output=True,
                          text=True, timeout=30, check=True)
    submitted = json.loads(sent.stdout)
    assert submitted["ok"] is True and submitted["data"]["id"], sent.stdout

    # a re-run logs in, finds the project, shows the key masked and how to regenerate it
    code, out, err = run(base)
    assert code == 0, err
    assert f"Logged in as {who} (existing account)." in out
    assert 'Project "CLI Game" (slug: cli-game) already exists; reusing it' in out
    assert key[-4:] in out and key not in out
    assert "--regenerate-key" in out
    api = client(stack)
    token = first["token"]
    mine = api.get("/projects", headers=auth(token)).json()["data"]
    assert [p["slug"] for p in mine] == ["cli-game"]
    bugs = api.get("/projects/cli-game/bugs", headers=auth(token)).json()
    assert bugs["meta"]["total"] == 1 and bugs["data"][0]["title"] == "Test report from curl"

    # --regenerate-key: a new key works, the old one stops
    code, out, err = run([*base, "--regenerate-key", "--json"])
    assert code == 0, err
    fresh = json.loads(out)["api_key"]
    assert fresh.startswith("sk_live_") and fresh != key
    game = client(stack)
    report = {"title": "After rotation", "category": "other"}
    assert game.post("/bugs/submit", json=report, headers={"X-API-Key": fresh}
                     ).status_code == 201
    assert game.post("/bugs/submit", json=report, headers={"X-API-Key": key}
                     ).status_code == 401


def test_wrong_password_is_one_clear_error_and_a_non_zero_exit(stack: Stack) -> None:
    who = email()
    base = ["init", "--url", stack.urls.gateway, "--email", who, "--project", "Locked Game"]
    assert run([*base, "--password", PASSWORD])[0] == 0
    code, out, err = run([*base, "--password", "not the password"])
    assert code == 1 and out == ""
    assert f"an account with {who} already exists and this password does not match" in err
    assert "Traceback" not in err
    code, _, err = run(["init", "--url", stack.urls.gateway, "--email", email(),
                        "--password", "short", "--project", "X Game"])
    assert code == 1 and "sign-up refused" in err and "password" in err


def test_client_paces_itself_to_the_limit_from_one_address(stack: Stack) -> None:
    code, out, err = run(["init", "--url", stack.urls.gateway, "--email", email(),
                          "--password", PASSWORD, "--project", "Paced Game", "--json"])
    assert code == 0, err
    key = json.loads(out)["api_key"]
    api = Api(stack.urls.gateway, transport=httpx.HTTPTransport(local_address=address()))
    extra = 60
    started = time.monotonic()
    with api, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: api.request("GET", "/bugs/settings", api_key=key),
                                range(SDK_LIMIT + extra)))
    elapsed = time.monotonic() - started
    pacer = api.pacers["public"]
    assert all("screenshot_capture" in a for a in answers)  # every one answered in the end
    assert pacer.limit == SDK_LIMIT
    # a burst of the limit, then the bucket's refill (10 a second): the gateway let the last
    # 60 through no faster than that, and the client waited for it instead of being refused
    assert elapsed >= 0.9 * extra * 60 / SDK_LIMIT, elapsed
    assert pacer.paced_seconds >= 1, pacer.paced_seconds
    assert pacer.rate_limited <= 2  # the pace follows the refill: 429s are rare


def test_demo_loads_bugs_releases_and_regressions_and_a_rerun_keeps_them(
        stack: Stack) -> None:
    who = email()
    args = ["demo", "--url", stack.urls.gateway, "--email", who, "--password", PASSWORD,
            "--json"]
    started = time.monotonic()
    code, out, err = run(args)
    took = time.monotonic() - started
    assert code == 0, err
    doc = json.loads(out)
    assert doc["project"]["slug"] == "demo-game" and doc["already_loaded"] is False
    assert doc["sent"] == {"sdk_requests": 492, "bug_reports": 31, "sessions": 300,
                           "snapshots": 150}
    assert f"The gateway allows {SDK_LIMIT} SDK requests a minute" in err
    assert doc["rate_limit"]["rate_limited"] == 0
    assert took < 90, err  # about a minute, on a busy machine

    # what a newcomer sees, read back with a plain client
    api = client(stack)
    token = doc["token"]

    def get(path: str, **params: Any) -> dict[str, Any]:
        resp = api.get(f"/projects/demo-game{path}", params=params, headers=auth(token))
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    regressions = get("/regressions")["data"]
    assert sorted((r["kind"], r["version"], r["previous_version"]) for r in regressions) == [
        ("crash_rate", "1.2.0", "1.1.0"), ("frame_time", "1.2.0", "1.1.0"),
        ("recurrence", "1.2.0", "1.1.0")]
    releases = get("/analytics/releases")["data"]
    assert [(r["version"], r["sessions"], r["crashed"]) for r in releases] == [
        ("1.2.0", 100, 7), ("1.1.0", 100, 1), ("1.0.0", 100, 2)]
    bugs = get("/bugs", limit=100)
    assert bugs["meta"]["total"] == 16
    by_title = {b["title"]: b for b in bugs["data"]}
    save = by_title["[Error] IOException: Sharing violation while writing the save file"]
    assert (save["status"], save["occurrences"], save["is_regression"]) == ("open", 7, True)
    statuses = {b["status"] for b in bugs["data"]}
    assert {"open", "in_progress", "resolved", "closed", "wont_fix"} <= statuses
    assert len(get("/labels")["data"]) == 4
    detail = get(f"/bugs/{save['id']}")["data"]
    assert [label["name"] for label in detail["labels"]] == ["save-system"]
    assert detail["comments"] and "temporary file" in detail["comments"][0]["body"]
    crashes = get("/analytics/crashes")["data"]
    assert crashes["sessions"] == 300 and len(crashes["top_signatures"]) == 4
    perf = get("/analytics/performance")["data"]
    assert sum(v["count"] for v in perf["versions"]) == 150 and perf["scenes"]
    assert doc["summary"]["bugs"] == 16
    assert set(doc["links"]) >= {"dashboard", "crashes", "releases", "regressions"}

    # a second run changes nothing and says so
    code, out, err = run([a for a in args if a != "--json"])
    assert code == 0, err
    assert "The demo is already loaded" in out and "--reset" in out
    assert "recurrence  1.2.0 (after 1.1.0)" in out
    assert get("/analytics/releases")["meta"]["total"] == 3
    assert get("/bugs")["meta"]["total"] == 16


def test_demo_refuses_a_project_it_did_not_create(stack: Stack) -> None:
    who = email()
    code, _, err = run(["init", "--url", stack.urls.gateway, "--email", who, "--password",
                        PASSWORD, "--project", "Mine", "--slug", "mine-not-demo"])
    assert code == 0, err
    code, out, err = run(["demo", "--url", stack.urls.gateway, "--email", who, "--password",
                          PASSWORD, "--slug", "mine-not-demo"])
    assert code == 1 and out == ""
    assert "that `bugnet demo` did not create; pass --reset" in err


class CutOff(httpx.BaseTransport):
    """A client that is interrupted (Ctrl-C) after `after` requests."""

    def __init__(self, after: int) -> None:
        self._inner = httpx.HTTPTransport(local_address=address())
        self._left = after
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self._left -= 1
            if self._left < 0:
                raise KeyboardInterrupt
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def test_an_interrupted_demo_is_loaded_afresh_by_the_next_run(stack: Stack) -> None:
    args = ["demo", "--url", stack.urls.gateway, "--email", email(), "--password", PASSWORD,
            "--slug", "cut-demo", "--json"]
    code, out, err = run(args, transport=CutOff(150))
    assert code == 130 and out == "" and "interrupted" in err
    code, out, err = run(args)
    assert code == 0, err
    assert "Deleting the existing 'cut-demo' (an earlier run was interrupted)" in err
    doc = json.loads(out)
    assert doc["replaced"] is True
    assert doc["summary"]["sessions"] == 300 and doc["summary"]["bugs"] == 16
    assert sorted(r["kind"] for r in doc["summary"]["regressions"]) == [
        "crash_rate", "frame_time", "recurrence"]
