"""`bugnet demo`: a populated project through the real endpoints, in about a minute.

The demo project is created by this command and marked through its description, so a
re-run recognises it: a finished demo is left as it is (and summarised again), one an
interrupted run left half-loaded is deleted and loaded afresh, and a project with that slug the
command did not create is never touched without `--reset`.

The game's data goes through the SDK endpoints with the project's API key, exactly as shipped
clients send it; the triage goes through the bearer API like a studio member would. Both are
paced by `client.Api` to the gateway's per-IP limits (spec §3), which decide the run time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from .account import Account, find_project
from .client import Api, ApiError, CliError
from .demo_data import LABELS, TRIAGE, TRIAGE_AFTER_1_2, VERSIONS, Plan, Report, Triage

DEMO_SLUG = "demo-game"
DEMO_NAME = "Demo Game"
LOADING = "Demo project of `bugnet demo` (loading)"
LOADED = "Demo project of `bugnet demo`: bugs, crashes, three releases and their regressions"
# A one-minute run needs the SDK class to hold the whole plan in one burst.
SUGGESTED_PUBLIC_LIMIT = 1000
PROPAGATION_SECONDS = 30.0  # events reach the analytics read models well within this
EXPECTED_KINDS = ("crash_rate", "frame_time", "recurrence")

Progress = Callable[[str], None]


@dataclass
class Loaded:
    """What a run did, for the summary."""

    project: dict[str, Any]
    created: bool
    already_loaded: bool = False
    replaced: bool = False
    seconds: float = 0.0
    reports_sent: int = 0
    sessions_sent: int = 0
    snapshots_sent: int = 0
    sdk_requests: int = 0
    public_limit: int | None = None
    estimate_seconds: float = 0.0
    rate_limited: int = 0
    paced_seconds: float = 0.0
    new_regressions: list[dict[str, Any]] = field(default_factory=list)
    bug_ids: dict[str, str] = field(default_factory=dict)


def eventually(fetch: Callable[[], Any], ok: Callable[[Any], bool], *, timeout: float,
               interval: float = 0.5, sleep: Callable[[float], None] = time.sleep) -> Any:
    """`fetch()` until `ok` holds or `timeout` seconds pass; the last value either way."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ok(value) or time.monotonic() >= deadline:
            return value
        sleep(interval)


def estimate_seconds(requests: int, limit: int | None, remaining: int | None) -> float:
    """The time the gateway's bucket needs for `requests`: a burst of what remains, then one
    per 60/limit seconds."""
    if not limit:
        return 0.0
    burst = remaining if remaining is not None else limit
    return max(0, requests - burst) * 60.0 / limit


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"


class DemoLoader:
    def __init__(self, api: Api, account: Account, *, slug: str, plan: Plan, workers: int,
                 progress: Progress) -> None:
        self.api = api
        self.account = account
        self.slug = slug
        self.base = f"/projects/{slug}"
        self.plan = plan
        self.workers = workers
        self.progress = progress
        self._count_lock = threading.Lock()

    # -- the project ------------------------------------------------------------------------

    def prepare(self, *, name: str, reset: bool) -> tuple[Loaded, str | None]:
        """The demo project to load into and its API key (None: it is loaded already)."""
        existing = find_project(self.api, self.slug)
        replaced = False
        if existing is not None:
            description = existing.get("description") or ""
            if description == LOADED and not reset:
                return Loaded(project=existing, created=False, already_loaded=True), None
            if description != LOADING and not reset:
                raise CliError(
                    f"you already have a project '{self.slug}' that `bugnet demo` did not "
                    "create; pass --reset to delete it and load the demo, or --slug to use "
                    "another slug")
            why = "reset requested" if reset else "an earlier run was interrupted"
            self.progress(f"Deleting the existing '{self.slug}' ({why}) …")
            self.delete_project()
            replaced = True
        try:
            created = self.api.request("POST", "/projects", bearer=True, json={
                "name": name, "slug": self.slug, "description": LOADING})
        except ApiError as exc:
            if exc.status == 409:
                raise CliError(f"the slug '{self.slug}' belongs to another account's project; "
                               "pass --slug to use another one") from None
            raise
        self.progress(f"Created project '{name}' ({self.slug}).")
        self.await_analytics(present=True)
        return Loaded(project=created, created=True, replaced=replaced), created["api_key"]

    def delete_project(self) -> None:
        try:
            self.api.request("DELETE", self.base, bearer=True)
        except ApiError as exc:
            if exc.status in (403, 404):
                raise CliError(f"only the owner can delete '{self.slug}' ({exc.message})") from None
            raise
        self.await_analytics(present=False)

    def await_analytics(self, *, present: bool) -> None:
        """Wait until the analytics service knows (or has forgotten) the project."""
        want = 200 if present else 404

        def status() -> int:
            try:
                self.api.request("GET", f"{self.base}/analytics", bearer=True,
                                 params={"days": 1})
                return 200
            except ApiError as exc:
                return exc.status

        if eventually(status, lambda s: s == want, timeout=PROPAGATION_SECONDS) != want:
            raise CliError("the analytics service did not see the project change within "
                           f"{PROPAGATION_SECONDS:.0f} s; is its worker running? (`make status`)")

    # -- loading ----------------------------------------------------------------------------

    def load(self, loaded: Loaded, key: str, *, started: float) -> Loaded:
        """Send the plan; `started` (time.monotonic) is when the command began."""
        plan = self.plan
        self.sdk("GET", "/bugs/settings", key)  # what a game asks first; tells the SDK limit
        pacer = self.api.pacers["public"]
        loaded.sdk_requests = plan.sdk_requests
        loaded.public_limit = pacer.limit
        tokens = None if pacer.tokens is None else max(0, int(pacer.tokens))
        loaded.estimate_seconds = estimate_seconds(plan.sdk_requests - 1, pacer.limit, tokens)
        self.announce(loaded)

        self.progress(f"Bug reports of {VERSIONS[0]} and {VERSIONS[1]} …")
        self.submit_reports(loaded, plan.reports_first, key)
        self.progress("Triage: labels, statuses, assignees, comments …")
        labels = self.create_labels()
        self.triage(loaded, TRIAGE, labels)
        self.progress(f"Bug reports of {VERSIONS[2]} (the save crash fixed in "
                      f"{VERSIONS[1]} is back) …")
        self.submit_reports(loaded, plan.reports_later, key)
        self.triage(loaded, TRIAGE_AFTER_1_2, labels)
        self.send_sessions_and_snapshots(loaded, key)

        expected = len(plan.sessions)
        self.progress("Waiting for the analytics figures …")
        eventually(self.session_total, lambda n: n >= expected, timeout=PROPAGATION_SECONDS)
        loaded.new_regressions = self.api.request("POST", f"{self.base}/regressions/detect",
                                                  bearer=True) or []
        eventually(lambda: {r["kind"] for r in self.api.list_all(f"{self.base}/regressions")},
                   lambda kinds: set(EXPECTED_KINDS) <= kinds, timeout=PROPAGATION_SECONDS)
        loaded.project = self.api.request("PATCH", self.base, bearer=True,
                                          json={"description": LOADED})
        loaded.rate_limited = pacer.rate_limited
        loaded.paced_seconds = pacer.paced_seconds
        loaded.seconds = time.monotonic() - started
        return loaded

    def announce(self, loaded: Loaded) -> None:
        plan = self.plan
        limit = loaded.public_limit
        self.progress(
            f"Sending {plan.sdk_requests} SDK requests: {len(plan.reports)} bug reports, "
            f"{len(plan.sessions)} sessions over {', '.join(VERSIONS)} and "
            f"{len(plan.snapshots)} performance snapshots.")
        if limit is None:
            return
        # Past the limit's wait, a stack on one machine takes about 1 s per 100 requests.
        total = loaded.estimate_seconds + plan.sdk_requests / 100 + 2
        self.progress(f"The gateway allows {limit} SDK requests a minute from one IP: this "
                      f"takes about {format_duration(total)}.")
        if loaded.estimate_seconds > 60:
            self.progress(
                "For a one-minute demo, restart Bugnet with a higher SDK limit and run this "
                f"again: make down && BUGNET_RATE_LIMIT_PUBLIC={SUGGESTED_PUBLIC_LIMIT} make up "
                "(Ctrl-C now is safe: the next run starts the demo afresh).")

    def sdk(self, method: str, path: str, key: str, json: Any = None) -> Any:
        return self.api.request(method, path, json=json, api_key=key)

    def submit_reports(self, loaded: Loaded, reports: list[Report], key: str) -> None:
        # One at a time: a crash's first report must arrive first (its first-seen version).
        for report in reports:
            data = self.sdk("POST", "/bugs/submit", key, report.body)
            loaded.bug_ids.setdefault(report.bug, data["id"])
            loaded.reports_sent += 1

    def create_labels(self) -> dict[str, str]:
        return {name: self.api.request("POST", f"{self.base}/labels", bearer=True,
                                       json={"name": name, "color": color})["id"]
                for name, color in LABELS.items()}

    def triage(self, loaded: Loaded, actions: dict[str, Triage], labels: dict[str, str]) -> None:
        me = self.account.user["id"]
        for bug, action in actions.items():
            bug_path = f"{self.base}/bugs/{loaded.bug_ids[bug]}"
            for body, internal in action.comments:
                self.api.request("POST", f"{bug_path}/comments", bearer=True,
                                 json={"body": body, "internal": internal})
            change: dict[str, Any] = {}
            if action.status:
                change["status"] = action.status
            if action.assign_to_me:
                change["assignee"] = me
            if action.public:
                change["is_public"] = True
            if change:
                self.api.request("PATCH", bug_path, bearer=True, json=change)
            for label in action.labels:
                self.api.request("POST", f"{bug_path}/labels", bearer=True,
                                 json={"label_id": labels[label]})

    def send_sessions_and_snapshots(self, loaded: Loaded, key: str) -> None:
        plan = self.plan
        sessions = list(plan.sessions)
        # The analytics service learns a new key from the bugs service's event: the first
        # session may arrive a moment before it does.
        first = sessions.pop(0)
        self.first_analytics_request(first, key)
        loaded.sessions_sent += 1
        tasks: list[Callable[[], None]] = []

        def session_task(steps: list[tuple[str, dict[str, Any]]]) -> Callable[[], None]:
            def run() -> None:
                self.send_session(steps, key)
                with self._count_lock:
                    loaded.sessions_sent += 1
            return run

        def snapshot_task(body: dict[str, Any]) -> Callable[[], None]:
            def run() -> None:
                self.sdk("POST", "/perf/snapshot", key, body)
                with self._count_lock:
                    loaded.snapshots_sent += 1
            return run

        # Interleaved, so the releases fill side by side and progress reads evenly.
        snapshots = [snapshot_task(s) for s in plan.snapshots]
        every = max(1, len(sessions) // max(1, len(snapshots)))
        for i, steps in enumerate(sessions):
            tasks.append(session_task(steps))
            if i % every == 0 and snapshots:
                tasks.append(snapshots.pop(0))
        tasks.extend(snapshots)
        self.run_parallel(tasks, loaded)

    def first_analytics_request(self, steps: list[tuple[str, dict[str, Any]]], key: str) -> None:
        deadline = time.monotonic() + PROPAGATION_SECONDS
        while True:
            try:
                self.send_session(steps[:1], key)
                break
            except ApiError as exc:
                if exc.status != 401 or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self.send_session(steps[1:], key)

    def send_session(self, steps: list[tuple[str, dict[str, Any]]], key: str) -> None:
        for path, body in steps:
            # The Godot SDK sends the key only in the body; the others send the header too.
            self.api.request("POST", path, json={**body, "api_key": key}, api_key=key)

    def run_parallel(self, tasks: list[Callable[[], None]], loaded: Loaded) -> None:
        total_sessions, total_snapshots = len(self.plan.sessions), len(self.plan.snapshots)
        last = time.monotonic()
        with ThreadPoolExecutor(self.workers) as pool:
            pending: set[Future[None]] = {pool.submit(t) for t in tasks}
            try:
                while pending:
                    done, pending = wait(pending, timeout=10, return_when=FIRST_EXCEPTION)
                    for future in done:
                        future.result()
                    if time.monotonic() - last >= 10 and pending:
                        last = time.monotonic()
                        self.progress(f"  sessions {loaded.sessions_sent}/{total_sessions}, "
                                      f"snapshots {loaded.snapshots_sent}/{total_snapshots}")
            except BaseException:
                for future in pending:
                    future.cancel()
                raise

    # -- reading back -----------------------------------------------------------------------

    def session_total(self) -> int:
        releases = self.api.list_all(f"{self.base}/analytics/releases")
        return sum(int(r.get("sessions") or 0) for r in releases)

    def summary(self) -> dict[str, Any]:
        """What the project holds now, read back through the API."""
        api, base = self.api, self.base
        crashes = api.request("GET", f"{base}/analytics/crashes", bearer=True)
        return {
            "bugs": api.count(f"{base}/bugs"),
            "open_bugs": api.count(f"{base}/bugs", {"status": "open"}),
            "crash_bugs": api.count(f"{base}/bugs", {"category": "crash"}),
            "sessions": crashes.get("sessions"),
            "crash_free_rate": crashes.get("crash_free_rate"),
            "crash_signatures": len(crashes.get("top_signatures") or []),
            "releases": api.list_all(f"{base}/analytics/releases"),
            "regressions": api.list_all(f"{base}/regressions"),
            "performance": (api.request("GET", f"{base}/analytics/performance", bearer=True)
                            or {}).get("versions", []),
        }


def links(api: Api, slug: str) -> dict[str, str]:
    base = api.url(f"/projects/{slug}")
    return {
        "dashboard": f"{base}/analytics",
        "bugs": f"{base}/bugs",
        "crashes": f"{base}/analytics/crashes",
        "releases": f"{base}/analytics/releases",
        "release 1.2.0": f"{base}/analytics/releases/1.2.0",
        "performance": f"{base}/analytics/performance",
        "regressions": f"{base}/regressions",
    }
