"""Bench: the Steam review import and dashboard, and git issue creation, on a real database
against local fake Steam and GitHub servers (tests/fakes: real HTTP on 127.0.0.1).

Starts PostgreSQL (the tests' helper: the PyPI wheel) unless --database-url is given, migrates
the integrations database and runs the use cases the routes call (`steam.service.sync`,
`steam.service.dashboard`, `git.service.create_issue`): everything of a request but the
Flask/JSON/token layer. Each figure has a baseline from the same run:
  fetch    walking every page of the fake Steam store with httpx alone (HTTP + JSON parse):
           the ceiling of a sync on this machine; the sync row's ratio divides by it
  sync     a first sync of --reviews reviews (pages of 100, word-list scan, one INSERT ...
           ON CONFLICT DO NOTHING per 500 rows, one transaction)
  resync   a sync with nothing new (one page fetched, then stop): p50 / p95 over --repeat runs
  dashboard  over 30 and 365 days: p50 / p95 over --repeat runs
  issue    creating a GitHub issue for a bug (claim row, HTTP to the fake, completion) vs a
           bare httpx POST to the same fake: p50 / p95 over --repeat bugs

    .venv/bin/python -m bench.steam_git [--reviews 5000] [--repeat 30] [--database-url URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.databases import REPO_ROOT, database
from bugnet_common.db import Database, migrate
from integrations import crypto
from integrations.access import Access
from integrations.git import service as git_service
from integrations.git.models import GitBugRef, GitIntegration
from integrations.migrate import MIGRATIONS
from integrations.models import ProjectRef
from integrations.settings import IntegrationsSettings
from integrations.steam import service as steam_service
from integrations.steam.models import SteamIntegration

sys.path.insert(0, str(REPO_ROOT / "tests"))
from fakes.github import FakeGitHub
from fakes.steam import FakeSteam, review

APP = 480
TOKEN = "ghp_bench" + "z" * 31
TEXTS = ["Great game, would play again", "Fun with friends but the servers lag a lot",
         "Crashes every time I open the map", "Boring after ten hours",
         "Beautiful art and music", "Too many bugs to enjoy it right now",
         "The story is amazing", "Froze twice during the boss fight, otherwise good",
         "Controls feel great", "Refunded: black screen on launch"]


def progress(text: str) -> None:
    print(f"[steam_git] {text}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def fetch_all(base: str) -> int:
    n, cursor = 0, "*"
    with httpx.Client() as http:
        while True:
            doc = http.get(f"{base}/appreviews/{APP}", params={
                "json": "1", "filter": "recent", "num_per_page": "100", "cursor": cursor,
                "language": "all", "purchase_type": "all"}).json()
            if not doc["reviews"]:
                return n
            n += len(doc["reviews"])
            cursor = doc["cursor"]


def run(opts: argparse.Namespace) -> list[str]:
    rng = random.Random(20261128)
    with database(opts.database_url, name=f"bench_steam_git_{uuid.uuid4().hex[:6]}") as url:
        migrate(script_location=MIGRATIONS, url=url)
        steam = FakeSteam()
        github = FakeGitHub(token=TOKEN, repos=["studio/bench"])
        steam.start()
        github.start()
        db = Database(url, pool_size=2)
        try:
            settings = IntegrationsSettings(
                database_url=url, env="dev", steam_store_url=steam.url,  # type: ignore[arg-type]
                github_api_url=github.url, steam_sync_max_pages=1000,
                steam_sync_deadline_seconds=600)
            now = datetime.now(UTC)
            steam.add(APP, *[review(rng.choice(TEXTS), voted_up=rng.random() < 0.8,
                                    at=now - timedelta(minutes=7 * i))
                             for i in range(opts.reviews)])
            project = ProjectRef(id=str(uuid.uuid4()), slug="bench-steam", name="Bench")
            with db.session() as session:
                session.add(project)
                session.flush()  # no ORM relationships: the project row must exist first
                session.add(SteamIntegration(project_id=project.id, app_id=APP))
                session.add(GitIntegration(project_id=project.id, provider="github",
                                           repository="studio/bench",
                                           token_encrypted=crypto.encrypt(settings.secret(),
                                                                          TOKEN),
                                           token_hint="…"))
                session.commit()

            progress(f"baseline: fetching {opts.reviews} reviews with httpx alone")
            start = time.perf_counter()
            fetched = fetch_all(steam.url)
            fetch_s = time.perf_counter() - start
            assert fetched == opts.reviews

            progress("first sync")
            with db.session() as session:
                start = time.perf_counter()
                result = steam_service.sync(session=session, project=project, settings=settings)
                sync_s = time.perf_counter() - start
            assert result["imported"] == opts.reviews and result["complete"], result

            def resync() -> None:
                with db.session() as session:
                    r = steam_service.sync(session=session, project=project, settings=settings)
                    assert r["imported"] == 0

            resync_ms = timed(resync, opts.repeat)

            def board(days: int) -> Callable[[], None]:
                def go() -> None:
                    with db.session() as session:
                        steam_service.dashboard(session=session, project=project, days=days)
                return go

            board30 = timed(board(30), opts.repeat)
            board365 = timed(board(365), opts.repeat)

            progress("git issues")
            with db.session() as session:
                bug_ids = []
                for n in range(opts.repeat):
                    bug = GitBugRef(id=str(uuid.uuid4()), project_id=project.id, number=n + 1,
                                    title=f"Bench bug {n}", category="crash", priority="high",
                                    status="open", url=f"/api/projects/bench-steam/bugs/{n}")
                    session.add(bug)
                    bug_ids.append(bug.id)
                session.commit()
            access = Access(project=project, user_id=str(uuid.uuid4()), role="owner",
                            permissions=frozenset({"bugs.edit"}))
            ids = iter(bug_ids)

            def issue() -> None:
                with db.session() as session:
                    git_service.create_issue(session=session, access=access, bug_id=next(ids),
                                             settings=settings)

            issue_ms = timed(issue, opts.repeat)
            with httpx.Client() as http:
                def direct() -> None:
                    http.post(f"{github.url}/repos/studio/bench/issues", json={
                        "title": "t", "body": "b", "labels": ["crash"]},
                        headers={"Authorization": f"Bearer {TOKEN}"}).raise_for_status()
                direct_ms = timed(direct, opts.repeat)
        finally:
            db.engine.dispose()
            steam.stop()
            github.stop()

    rate = opts.reviews / sync_s
    base_rate = opts.reviews / fetch_s
    return [
        f"steam + git: {opts.reviews} reviews, {opts.repeat} repeats; noisy shared machine",
        "",
        f"{'scenario':<34} {'figure':>22} {'baseline':>22} {'ratio':>6}",
        f"{'first sync (reviews/s)':<34} {rate:>22.0f} {base_rate:>22.0f} {rate / base_rate:>6.2f}",
        f"{'resync, nothing new p50/p95 ms':<34} "
        f"{f'{pct(resync_ms, .5):.1f} / {pct(resync_ms, .95):.1f}':>22} {'':>22} {'':>6}",
        f"{'dashboard 30 d p50/p95 ms':<34} "
        f"{f'{pct(board30, .5):.1f} / {pct(board30, .95):.1f}':>22} {'':>22} {'':>6}",
        f"{'dashboard 365 d p50/p95 ms':<34} "
        f"{f'{pct(board365, .5):.1f} / {pct(board365, .95):.1f}':>22} {'':>22} {'':>6}",
        f"{'git issue p50/p95 ms':<34} "
        f"{f'{pct(issue_ms, .5):.1f} / {pct(issue_ms, .95):.1f}':>22} "
        f"{f'{pct(direct_ms, .5):.1f} / {pct(direct_ms, .95):.1f}':>22} "
        f"{statistics.median(issue_ms) / statistics.median(direct_ms):>6.2f}",
        "",
        "baselines: httpx alone against the same fake server (fetch all pages / POST an issue)",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.steam_git")
    parser.add_argument("--reviews", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    opts = parser.parse_args(argv)
    try:
        lines = run(opts)
    except KeyboardInterrupt:
        progress("interrupted")
        return 130
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
