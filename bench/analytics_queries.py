"""Bench: crash health, release health and performance queries of the analytics service on one
very big project.

Generates --sessions game sessions (default 10,000,000) over the 90 days up to now in one
project — 60 releases (1.0.0 … 1.11.4) rolled out one after another with overlap, 7 platforms
skewed like a PC-first game, a crash rate between 1 % and 4 % that varies per release,
--players players (default 500,000) — straight into `game_sessions` in bulk (server-side
`INSERT … SELECT` over `generate_series`, one statement per million sessions), then fills the
rollups (`session_daily`, `session_minutes`, `players`, `player_days`) from them with GROUP BY
— exactly what the invariants of analytics/models.py say they hold. It adds 2,000 bugs (500
crash groups) with 300,000 crash reports (`bug_occurrences`, skewed to the top groups, each
group in three neighbouring releases; the crash rollups are filled by their trigger), and
--snapshots perf snapshots (default 500,000) with 12 scenes.

Then it runs --queries queries of each kind through the service functions the routes call
(everything of the request but HTTP, JSON and the token check), windows of 7, 30 and 90 days,
and prints p50 / p95 / max per kind:
  crashes          GET …/analytics/crashes (rollups + top crash groups)
  releases         GET …/analytics/releases (page 1)
  release detail   GET …/analytics/releases/{version} (a random release among the newest 15)
  performance      GET …/analytics/performance (percentiles over the window's snapshots)
Target: crash and release-health figures (the first three) p95 < 100 ms.

    .venv/bin/python -m bench.analytics_queries [--sessions 10000000] [--queries 60]
                                                [--database-url URL] [--keep-data]

`--database-url` with `--keep-data` reuses an already generated database (the load is
skipped when the project is there). Unknown arguments (`make bench`'s `--duration`) are
ignored.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.databases import database

SLUG = "bench-analytics"
SEED = 20261128
VERSIONS = [f"1.{minor}.{patch}" for minor in range(12) for patch in range(5)]
PLATFORMS = (["Windows"] * 62 + ["macOS"] * 9 + ["Linux"] * 7 + ["Android"] * 10 + ["iOS"] * 7
             + ["Web"] * 3 + [""] * 2)
SCENES = ["menu", "forest", "castle", "harbor", "desert", "arena", "sewers", "village",
          "mountain", "swamp", "dungeon", "credits"]
DAYS = 90
CHUNK = 1_000_000


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000_000, help="sessions to generate")
    parser.add_argument("--players", type=int, default=500_000, help="distinct players")
    parser.add_argument("--snapshots", type=int, default=500_000, help="perf snapshots")
    parser.add_argument("--queries", type=int, default=60, help="queries of each kind")
    parser.add_argument("--database-url", help="SQLAlchemy URL of a database to use "
                        "(default: a scratch PostgreSQL from the PyPI wheel)")
    parser.add_argument("--keep-data", action="store_true",
                        help="reuse the generated project if the database has it")
    opts, _unknown = parser.parse_known_args(argv)
    return opts


def _sql_array(values: Sequence[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def generate(conn: Any, opts: argparse.Namespace) -> str:
    """Load the project, its sessions and rollups, bugs, crash reports and snapshots."""
    rng = random.Random(SEED)
    project_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    owner = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    cur = conn.cursor()
    cur.execute("INSERT INTO projects (id, slug, name, owner_id, settings, updated_at) VALUES "
                "(%s, %s, 'Bench', %s, '{}', now())", (project_id, SLUG, owner))
    cur.execute("SELECT now() - interval '90 days'")
    start = cur.fetchone()[0]
    n = opts.sessions
    versions, platforms = _sql_array(VERSIONS), _sql_array(PLATFORMS)
    started = time.perf_counter()
    cur.execute("SELECT setseed(0.2026)")
    for first in range(1, n + 1, CHUNK):
        last = min(n, first + CHUNK - 1)
        # Release i is out from about i/60 of the span on; sessions near a release boundary
        # spread over the neighbouring releases (players update late). Crash rate per release:
        # 1 % + 0.3 % x ((7 i) mod 10).
        cur.execute(f"""
            INSERT INTO game_sessions (session_token, project_id, started_at, day, ended_at,
                crashed, platform, game_version, os_info, device_info, steam_id, device_id,
                player_hash, started_by_end)
            SELECT 'bench-' || g, %(project)s, ts, (ts AT TIME ZONE 'UTC')::date,
                   ts + interval '25 minutes',
                   random() < 0.01 + 0.003 * ((7 * v) %% 10), p, ({versions})[v + 1],
                   'OS', 'GPU', NULL, NULL, (random() * %(players)s)::bigint, false
            FROM (SELECT g, %(start)s + (g::float8 / %(n)s) * interval '{DAYS} days' AS ts,
                         least(59, greatest(0, floor(g::float8 / %(n)s * 60
                                                     - random() * 4)))::int AS v,
                         ({platforms})[1 + floor(random() * {len(PLATFORMS)})::int] AS p
                  FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g) s""",
                    {"project": project_id, "start": start, "n": n, "players": opts.players,
                     "first": first, "last": last})
        progress(f"  sessions {last:,} / {n:,}: {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    cur.execute("""
        INSERT INTO session_daily (project_id, day, game_version, platform, sessions, crashed,
                                   first_started_at, last_started_at)
        SELECT project_id, day, game_version, platform, count(*), count(*) FILTER (WHERE crashed),
               min(started_at), max(started_at)
        FROM game_sessions WHERE project_id = %(p)s GROUP BY 1, 2, 3, 4""", {"p": project_id})
    cur.execute("""
        INSERT INTO session_minutes (project_id, minute, sessions, crashed)
        SELECT project_id, date_trunc('minute', started_at), count(*),
               count(*) FILTER (WHERE crashed)
        FROM game_sessions WHERE project_id = %(p)s GROUP BY 1, 2""", {"p": project_id})
    cur.execute("""
        INSERT INTO players (project_id, player_hash, first_seen_day, last_seen_day,
                             last_crashed_day)
        SELECT project_id, player_hash, min(day), max(day), max(day) FILTER (WHERE crashed)
        FROM game_sessions WHERE project_id = %(p)s AND player_hash IS NOT NULL
        GROUP BY 1, 2""", {"p": project_id})
    cur.execute("""
        INSERT INTO player_days (project_id, day, players, crashed_players)
        SELECT project_id, day, sum(seen), sum(crashed) FROM (
            SELECT project_id, last_seen_day AS day, 1 AS seen, 0 AS crashed FROM players
            WHERE project_id = %(p)s
            UNION ALL
            SELECT project_id, last_crashed_day, 0, 1 FROM players
            WHERE project_id = %(p)s AND last_crashed_day IS NOT NULL) x
        GROUP BY 1, 2""", {"p": project_id})
    progress(f"  rollups: {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    cur.execute(f"""
        INSERT INTO bugs (id, project_id, number, title, status, priority, category, source,
                          platform, game_version, fingerprint, is_public, occurrences,
                          created_at, resolved_at, last_seen_at, updated_at)
        SELECT gen_random_uuid()::text, %(p)s, g, 'Bug ' || g,
               (ARRAY['open','in_progress','resolved','closed','wont_fix'])[1 + g %% 5],
               (ARRAY['low','medium','high','critical'])[1 + g %% 4],
               CASE WHEN g <= 500 THEN 'crash' ELSE 'gameplay' END, 'sdk', 'Windows',
               ({versions})[1 + (g * 13) %% 60],
               CASE WHEN g <= 500 THEN md5('crash' || g) END, false, 1,
               %(start)s + (g::float8 / 2000) * interval '{DAYS} days', NULL,
               %(start)s + (g::float8 / 2000) * interval '{DAYS} days', now()
        FROM generate_series(1, 2000) AS g""", {"p": project_id, "start": start})
    cur.execute(f"""
        INSERT INTO bug_occurrences (event_id, project_id, bug_id, occurred_at, game_version,
                                     platform, player_key)
        SELECT gen_random_uuid()::text, %(p)s, b.id, o.at,
               ({versions})[1 + least(59, (o.n * 13) %% 60 + o.v)], 'Windows',
               'steam:' || (random() * 100000)::int
        FROM (SELECT 1 + least(499, floor(500 * power(random(), 3)))::int AS n,
                     %(start)s + random() * interval '{DAYS} days' AS at,
                     floor(random() * 3)::int AS v
              FROM generate_series(1, 300000)) o
        JOIN bugs b ON b.project_id = %(p)s AND b.number = o.n""",
                {"p": project_id, "start": start})
    cur.execute(f"""
        INSERT INTO perf_snapshots (id, project_id, created_at, day, game_version, platform,
                                    fps, frame_time_ms, memory_used_mb, scene, scene_load_ms,
                                    custom_metrics, bug_id)
        SELECT gen_random_uuid()::text, %(p)s, at, (at AT TIME ZONE 'UTC')::date,
               ({versions})[1 + least(59, floor(g::float8 / %(n)s * 60))::int],
               ({platforms})[1 + floor(random() * {len(PLATFORMS)})::int],
               30 + random() * 110, 5 + random() * 40, 800 + random() * 3000,
               CASE WHEN random() < 0.3 THEN ({_sql_array(SCENES)})[1 + floor(random() * 12)::int]
               END, 200 + random() * 5000, '{{}}'::jsonb, NULL
        FROM (SELECT g, %(start)s + (g::float8 / %(n)s) * interval '{DAYS} days' AS at
              FROM generate_series(1, %(n)s) AS g) s""",
                {"p": project_id, "start": start, "n": opts.snapshots})
    cur.execute("UPDATE perf_snapshots SET scene_load_ms = NULL WHERE scene IS NULL "
                "AND project_id = %(p)s", {"p": project_id})
    conn.commit()
    progress(f"  bugs, crash reports, snapshots: {time.perf_counter() - started:.0f} s")
    return project_id


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


@dataclass
class Row:
    name: str
    timings: list[float]
    target: float | None = None

    def line(self) -> str:
        p50, p95 = percentile(self.timings, 50), percentile(self.timings, 95)
        verdict = "" if self.target is None else ("  ok" if p95 < self.target else "  MISSED")
        target = "" if self.target is None else f"< {self.target:.0f}"
        return (f"{self.name:<34}{len(self.timings):>6}{p50:>9.1f}{p95:>9.1f}"
                f"{max(self.timings):>9.1f}{statistics.fmean(self.timings):>9.1f}"
                f"  {target:<6}{verdict}")


def _bind(call: Callable[[int], Any], days: int) -> Callable[[], Any]:
    return lambda: call(days)


def run(opts: argparse.Namespace, url: str) -> list[Row]:
    import psycopg

    from analytics.crashes.health import window
    from analytics.crashes.service import crash_summary
    from analytics.migrate import MIGRATIONS
    from analytics.models import Project
    from analytics.performance.service import performance
    from analytics.releases.service import list_releases, release_detail
    from bugnet_common.db import Database, migrate
    from bugnet_common.web import Page

    migrate(script_location=MIGRATIONS, url=url)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        existing = conn.execute("SELECT id FROM projects WHERE slug = %s", (SLUG,)).fetchone()
        project_id = existing[0] if existing and opts.keep_data else None
        if project_id is None:
            if existing:
                conn.execute("DELETE FROM projects WHERE slug = %s", (SLUG,))
                for table in ("game_sessions", "session_daily", "session_minutes", "players",
                              "player_days", "bugs", "bug_occurrences", "perf_snapshots"):
                    conn.execute(f"DELETE FROM {table} WHERE project_id = %s", (existing[0],))
                conn.commit()
            progress(f"generating {opts.sessions:,} sessions")
            project_id = generate(conn, opts)
        else:
            progress("reusing the generated project")
    with psycopg.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        for table in ("game_sessions", "session_daily", "session_minutes", "players",
                      "player_days", "bugs", "bug_occurrences", "crash_daily", "crash_players",
                      "crash_player_days", "perf_snapshots"):
            conn.execute(f"VACUUM ANALYZE {table}")
        progress(f"  VACUUM ANALYZE: {time.perf_counter() - started:.0f} s")
        counts = conn.execute("""
            SELECT (SELECT count(*) FROM game_sessions WHERE project_id = %(p)s),
                   (SELECT count(*) FROM session_daily WHERE project_id = %(p)s),
                   (SELECT count(*) FROM bug_occurrences WHERE project_id = %(p)s),
                   (SELECT count(*) FROM perf_snapshots WHERE project_id = %(p)s),
                   pg_size_pretty(pg_total_relation_size('game_sessions'))""",
                              {"p": project_id}).fetchone()
        assert counts is not None
    db = Database(url)
    rng = random.Random(SEED + 1)
    rows: list[Row] = []
    with db.session() as session:
        project = session.get(Project, project_id)
        assert project is not None

        def timed(call: Callable[[], Any]) -> float:
            started = time.perf_counter()
            call()
            session.rollback()  # end the read transaction as a request would
            return (time.perf_counter() - started) * 1000

        kinds: list[tuple[str, Callable[[int], Any], float | None]] = [
            ("crashes", lambda d: crash_summary(session=session, project=project,
                                                win=window(d)), 100.0),
            ("releases", lambda d: list_releases(session=session, project=project,
                                                 win=window(d), page=Page()), 100.0),
            ("release detail", lambda d: release_detail(
                session=session, project=project, version=rng.choice(VERSIONS[-15:]),
                win=window(d)), 100.0),
            ("performance", lambda d: performance(session=session, project=project,
                                                  win=window(d)), None),
        ]
        for name, call, target in kinds:
            for days in (30, 7, 90):
                timed(_bind(call, days))  # warm-up, not measured
            by_days: dict[int, list[float]] = {}
            for i in range(opts.queries):
                days = (30, 30, 7, 90)[i % 4]
                by_days.setdefault(days, []).append(timed(_bind(call, days)))
            rows.append(Row(f"{name}: all", [t for ts in by_days.values() for t in ts], target))
            rows += [Row(f"  {name}: {d} days", ts) for d, ts in sorted(by_days.items())]
            progress(f"  {name} done")
    db.engine.dispose()
    progress("")
    print(f"bench.analytics_queries  {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
    print(f"data      {int(counts[0]):,} sessions in one project over {DAYS} days "
          f"(game_sessions {counts[4]}); {int(counts[1]):,} session_daily rows; "
          f"{int(counts[2]):,} crash reports; {int(counts[3]):,} perf snapshots")
    print(f"machine   nproc {os.cpu_count()}, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("timings   service function (what the route calls, rendering to dicts), ms; no HTTP")
    print()
    print(f"{'query':<34}{'n':>6}{'p50':>9}{'p95':>9}{'max':>9}{'mean':>9}  target")
    print("-" * 88)
    for row in rows:
        print(row.line())
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    with database(opts.database_url, name="bench_analytics") as url:
        rows = run(opts, url)
    return 0 if all(r.target is None or percentile(r.timings, 95) < r.target
                    for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
