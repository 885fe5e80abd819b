"""Bench: GET /bugs (filters, sorts, search) and POST /bugs/similar on one very big project.

Generates --bugs bugs (default 1,000,000) in one project with a realistic spread (statuses,
priorities, categories, platforms and versions skewed like a live game's tracker, 70 % of bugs
unassigned and the rest over 20 members with a long tail, a quarter with labels, a tenth with
a comment, vote counts mostly zero, titles and descriptions from a game-bug vocabulary with
thousands of proper names) and loads them with COPY: the bugs table's secondary indexes are
dropped for the load and rebuilt after it, as one would for a bulk import; the `bug_counts`
triggers run (statement level: once per COPY).

Then it runs --queries queries of each kind through the service functions the routes call
(`list_bugs` and `similar_bugs`, plus `views.bugs_out`, which renders the page: everything of
the request but HTTP, JSON and the token check) and prints p50 / p95 / max per kind:
  list     dashboard lists: status / priority / category / assignee (me, none) / label /
           platform / version filters, every sort, pages 1-5
  search   one domain word, two words, a partial word, a rare proper name, a search with a
           status filter, a very common word: relevance order (the default with `search`)
  similar  a new report's title and description (reworded from the generator's vocabulary)
Targets (issue 3): list p95 < 30 ms, search p95 < 100 ms.

    .venv/bin/python -m bench.bugs_queries [--bugs 1000000] [--queries 200] [--database-url URL]
                                           [--keep-data] [--explain]

`--database-url` with `--keep-data` reuses an already generated database (same --bugs and
seed): the load is skipped when the project is there.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.databases import database

SLUG = "bench-big"
SEED = 20261128

SUBJECTS = ["player", "character", "enemy", "boss", "NPC", "companion", "camera", "vehicle",
            "horse", "inventory", "minimap", "quest log", "HUD", "menu", "dialogue", "cutscene",
            "save file", "weapon", "shield", "bow", "spell", "projectile", "door", "chest",
            "ladder", "elevator", "water", "shadow", "texture", "particle effect", "sound",
            "music", "voice line", "controller", "mouse cursor", "keyboard binding", "lobby",
            "matchmaking", "server", "leaderboard", "achievement", "tutorial", "crafting menu",
            "skill tree", "map marker"]
PROBLEMS = ["falls through the floor", "clips through the wall", "gets stuck", "disappears",
            "flickers", "stutters", "freezes", "crashes the game", "does not load", "is missing",
            "plays twice", "is too loud", "is invisible", "spawns under the map",
            "teleports randomly", "does not respond", "shows the wrong text", "is stretched",
            "has low resolution", "desyncs", "lags behind", "drops frames", "overlaps the HUD",
            "resets progress", "duplicates items", "ignores input", "loops forever",
            "renders black", "turns pink", "jitters", "slides on slopes", "cannot be opened",
            "closes immediately", "shows placeholder art", "loses connection", "times out"]
PLACES = ["on the bridge", "in level 3", "in the forest", "near the castle gate",
          "in the desert map", "after loading a save", "during the boss fight", "in multiplayer",
          "in split screen", "on the main menu", "in the tavern", "underwater", "at night",
          "in the snow biome", "after alt-tab", "in fullscreen", "on ultrawide monitors",
          "in the sewer level", "near the harbor", "on the rooftop", "in co-op",
          "after respawning", "while sprinting", "while reloading", "in the shop",
          "during the tutorial", "in chapter 2", "in the arena"]
FILLER = str.split("the it when i was then and after this happens every time again game sometimes "
          "always also we it seems like maybe after before while with without for from to of "
          "in on at restart fixes reproduce repro tried settings graphics driver update version "
          "patch latest steam build console log attached screenshot video expected actual "
          "result should would could happened happening noticed players report reported "
          "several times")
SYLLABLES = ["ka", "ri", "mor", "del", "th", "an", "gor", "el", "vin", "dra", "ul", "sha", "ne",
             "bar", "quo", "lex", "tor", "mi", "zan", "fe", "wyn", "ost", "rak", "il", "pe", "dun"]
STATUSES = ["open"] * 35 + ["in_progress"] * 10 + ["resolved"] * 35 + ["closed"] * 15 + [
    "wont_fix"] * 5
PRIORITIES = ["low"] * 25 + ["medium"] * 45 + ["high"] * 22 + ["critical"] * 8
CATEGORIES = (["crash"] * 20 + ["visual"] * 15 + ["gameplay"] * 25 + ["performance"] * 10
              + ["audio"] * 7 + ["ui"] * 10 + ["network"] * 8 + ["other"] * 5)
PLATFORMS = ["Windows"] * 60 + ["macOS"] * 10 + ["Linux"] * 8 + ["Android"] * 10 + [
    "iOS"] * 7 + ["Web"] * 3 + ["Switch"] * 2
VERSIONS = [f"1.{minor}.{patch}" for minor in range(12) for patch in range(5)]
LABELS = ["needs-repro", "regression", "ux", "steam", "console", "localization", "blocker",
          "good-first-bug", "perf", "dlc"]
MEMBERS = 20


@dataclass(frozen=True)
class World:
    project_id: str
    member_ids: list[str]
    names: list[str]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bugs", type=int, default=1_000_000, help="bugs to generate")
    parser.add_argument("--queries", type=int, default=200, help="queries of each kind")
    parser.add_argument("--database-url", help="SQLAlchemy URL of a database to use "
                        "(default: a scratch PostgreSQL from the PyPI wheel)")
    parser.add_argument("--keep-data", action="store_true",
                        help="reuse the generated project if the database has it")
    parser.add_argument("--explain", action="store_true",
                        help="print EXPLAIN ANALYZE of one query of each kind")
    return parser.parse_args(argv)



def proper_names(rng: random.Random, n: int = 5000) -> list[str]:
    return ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()
            for _ in range(n)]


def _copy(cur: Any, table: str, columns: str, rows: Callable[[], Iterator[tuple[Any, ...]]]) -> None:
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows():
            copy.write_row(row)


def generate(conn: Any, n: int) -> World:
    """Load the project, its members and labels, and `n` bugs with labels and comments."""
    rng = random.Random(SEED)
    names = proper_names(rng)
    members = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(MEMBERS)]
    project_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    label_ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in LABELS]
    cur = conn.cursor()
    cur.execute("INSERT INTO projects (id, slug, name, settings, api_key_hash, api_key_last4, "
                "bug_seq, created_at, updated_at) VALUES (%s, %s, 'Bench', '{}', %s, 'abcd', %s, "
                "now(), now())", (project_id, SLUG, uuid.uuid4().hex * 2, n))
    for i, member in enumerate(members):
        cur.execute("INSERT INTO users (id, email, display_name, deleted, updated_at) VALUES "
                    "(%s, %s, %s, false, now())", (member, f"dev{i}@studio.example", f"Dev {i}"))
        cur.execute("INSERT INTO members (project_id, user_id, role, joined_at) VALUES "
                    "(%s, %s, %s, now())", (project_id, member, "owner" if i == 0 else "member"))
    for label_id, name in zip(label_ids, LABELS, strict=True):
        cur.execute("INSERT INTO labels (id, project_id, name, color, created_at) VALUES "
                    "(%s, %s, %s, '#aabbcc', now())", (label_id, project_id, name))
    # A bulk import: secondary indexes of bugs go, the rows come in, the indexes come back.
    cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'bugs' AND "
                "indexname NOT IN ('bugs_pkey', 'uq_bugs_project_number')")
    indexes = cur.fetchall()
    for name, _ in indexes:
        cur.execute(f'DROP INDEX "{name}"')
    start = datetime(2024, 1, 1, tzinfo=UTC)
    span = 2 * 365 * 86400
    bug_labels: list[tuple[str, str]] = []
    comments: list[tuple[str, str, str, str, bool, datetime]] = []

    def bug_rows() -> Iterator[tuple[Any, ...]]:
        for i in range(1, n + 1):
            subject, problem, place = rng.choice(SUBJECTS), rng.choice(PROBLEMS), rng.choice(PLACES)
            title = f"{subject.capitalize()} {problem} {place}"
            if rng.random() < 0.3:
                title += f" ({names[int(rng.paretovariate(1.2)) % len(names)]})"
            words = [rng.choice(FILLER) for _ in range(rng.randint(15, 45))]
            words.insert(rng.randint(0, len(words)), f"{subject} {problem}")
            if rng.random() < 0.5:
                words.insert(rng.randint(0, len(words)), names[rng.randrange(len(names))])
            description = " ".join(words).capitalize() + "."
            steps = (f"1. Go {place}\n2. {rng.choice(['Open', 'Use', 'Equip', 'Talk to'])} the "
                     f"{rng.choice(SUBJECTS)}\n3. Wait")
            position = int(len(VERSIONS) * i / n + rng.gauss(0, 3))
            version = VERSIONS[min(len(VERSIONS) - 1, max(0, position))]
            created = start + timedelta(seconds=span * i / n)
            updated = created + timedelta(seconds=rng.expovariate(1 / (86400 * 5)))
            status = rng.choice(STATUSES)
            assignee = (members[int(rng.paretovariate(1.0)) % MEMBERS]
                        if rng.random() < 0.3 else None)
            platform = rng.choice(PLATFORMS)
            bug_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            text = "\n".join([title, description, steps])
            if rng.random() < 0.1:
                body = f"Still happens on {version}, {rng.choice(FILLER)} {rng.choice(names)}"
                comments.append((str(uuid.uuid4()), bug_id, members[rng.randrange(MEMBERS)],
                                 body, False, updated))
                text += "\n" + body
            if rng.random() < 0.25:
                for label_id in rng.sample(label_ids, rng.choice((1, 1, 2))):
                    bug_labels.append((bug_id, label_id))
            yield (bug_id, project_id, i, title, description, rng.choice(CATEGORIES),
                   rng.choice(PRIORITIES), status, steps, "", "", platform, version, assignee,
                   int(rng.expovariate(0.5)) if rng.random() < 0.4 else 0, 1,
                   json.dumps([platform]), json.dumps([version]), version, version,
                   rng.choice(["sdk"] * 7 + ["dashboard"] * 2 + ["public"]),
                   rng.random() < 0.2, False, text, created, updated,
                   updated if status in ("resolved", "closed") else None)

    started = time.perf_counter()
    _copy(cur, "bugs", "id, project_id, number, title, description, category, priority, status, "
          "steps, expected, actual, platform, game_version, assignee_id, votes, occurrences, "
          "platforms, versions, first_seen_version, last_seen_version, source, is_public, "
          "is_regression, search_text, created_at, updated_at, resolved_at", bug_rows)
    _copy(cur, "bug_labels", "bug_id, label_id", lambda: iter(bug_labels))
    _copy(cur, "comments", "id, bug_id, author_id, body, internal, created_at", lambda: iter(comments))
    progress(f"  COPY of {n:,} bugs, {len(bug_labels):,} labels, {len(comments):,} comments: "
             f"{time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    cur.execute("SET maintenance_work_mem = '512MB'")
    for _, definition in indexes:
        cur.execute(definition)
    conn.commit()
    progress(f"  {len(indexes)} indexes rebuilt: {time.perf_counter() - started:.0f} s")
    return World(project_id=project_id, member_ids=members, names=names)


def existing_world(conn: Any) -> World | None:
    cur = conn.cursor()
    cur.execute("SELECT id FROM projects WHERE slug = %s", (SLUG,))
    row = cur.fetchone()
    if row is None:
        return None
    rng = random.Random(SEED)
    names = proper_names(rng)
    cur.execute("SELECT user_id FROM members WHERE project_id = %s ORDER BY role, user_id",
                (row[0],))
    return World(project_id=row[0], member_ids=[r[0] for r in cur.fetchall()], names=names)


# ---- the query mixes -----------------------------------------------------------------------

def list_queries(rng: random.Random, world: World, count: int) -> list[tuple[str, dict[str, str]]]:
    """(kind, query args) as the dashboard sends them."""
    kinds: list[tuple[str, Callable[[], dict[str, str]]]] = [
        ("open, newest", lambda: {"status": "open"}),
        ("open+in progress, high+critical", lambda: {"status": "open,in_progress",
                                                     "priority": "high,critical"}),
        ("open crashes", lambda: {"status": "open", "category": "crash"}),
        ("assigned to me", lambda: {"assignee": "me", "status": "open,in_progress"}),
        ("unassigned open, by priority", lambda: {"assignee": "none", "status": "open",
                                                  "sort": "priority"}),
        ("label", lambda: {"label": rng.choice(LABELS)}),
        ("platform + status", lambda: {"platform": rng.choice(PLATFORMS), "status": "open"}),
        ("version", lambda: {"game_version": rng.choice(VERSIONS[-15:])}),
        ("all, by votes", lambda: {"sort": "votes"}),
        ("all, recently updated", lambda: {"sort": "updated"}),
        ("all, oldest", lambda: {"sort": "oldest"}),
    ]
    out = []
    for i in range(count):
        kind, make = kinds[i % len(kinds)]
        args = make()
        args["page"] = str(rng.choice([1, 1, 1, 1, 2, 3, 5]))
        args["limit"] = str(rng.choice([20, 20, 50]))
        out.append((kind, args))
    return out


def search_queries(rng: random.Random, world: World, count: int) -> list[tuple[str, dict[str, str]]]:
    words = sorted({w for phrase in SUBJECTS + PROBLEMS + PLACES for w in phrase.lower().split()
                    if len(w) > 4})
    kinds: list[tuple[str, Callable[[], dict[str, str]]]] = [
        ("one word", lambda: {"search": rng.choice(words)}),
        ("two words", lambda: {"search": f"{rng.choice(SUBJECTS).split()[-1]} "
                                         f"{rng.choice(PROBLEMS).split()[0]}"}),
        ("partial word", lambda: {"search": (w := rng.choice(words))[: max(4, len(w) - 3)]}),
        ("proper name", lambda: {"search": rng.choice(world.names[:2000])}),
        ("name + open", lambda: {"search": rng.choice(world.names[:300]), "status": "open"}),
        ("phrase", lambda: {"search": f"{rng.choice(SUBJECTS)} {rng.choice(PROBLEMS)}"}),
    ]
    out = []
    for i in range(count):
        kind, make = kinds[i % len(kinds)]
        out.append((kind, {**make(), "limit": "20"}))
    return out


def similar_queries(rng: random.Random, world: World, count: int) -> list[tuple[str, str]]:
    out = []
    for _ in range(count):
        subject, problem, place = rng.choice(SUBJECTS), rng.choice(PROBLEMS), rng.choice(PLACES)
        title = f"the {subject} {problem} {place}"
        description = f"I noticed the {subject} {problem} again. " + " ".join(
            rng.choice(FILLER) for _ in range(20))
        out.append((title, description))
    return out


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
        return (f"{self.name:<42}{len(self.timings):>6}{p50:>9.1f}{p95:>9.1f}"
                f"{max(self.timings):>9.1f}{statistics.fmean(self.timings):>9.1f}  {target:<6}{verdict}")


def run(opts: argparse.Namespace, url: str) -> list[Row]:
    import psycopg

    from bugnet_common.db import Database, migrate
    from bugnet_common.web import Page
    from bugs.migrate import MIGRATIONS
    from bugs.models import Project
    from bugs.reports.schemas import filters_from_args
    from bugs.reports.service import list_bugs, similar_bugs
    from bugs.views import bugs_out

    migrate(script_location=MIGRATIONS, url=url)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        world = existing_world(conn) if opts.keep_data else None
        if world is None:
            with conn.cursor() as cur:
                cur.execute("DELETE FROM projects WHERE slug = %s", (SLUG,))
            conn.commit()
            progress(f"generating {opts.bugs:,} bugs")
            world = generate(conn, opts.bugs)
        else:
            progress("reusing the generated project")
    with psycopg.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE bugs")
        conn.execute("VACUUM ANALYZE bug_labels")
        conn.execute("VACUUM ANALYZE bug_counts")
        progress(f"  VACUUM ANALYZE: {time.perf_counter() - started:.0f} s")
        size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('bugs')), "
                            "count(*) FROM bugs WHERE project_id = %s",
                            (world.project_id,)).fetchone()
        assert size is not None
        settings: dict[str, str] = dict(conn.execute("SELECT name, setting || coalesce(unit, '') FROM "
                                     "pg_settings WHERE name IN ('shared_buffers', 'work_mem', "
                                     "'max_parallel_workers_per_gather', 'server_version')"
                                     ).fetchall())
    db = Database(url)
    rng = random.Random(SEED + 1)
    me = world.member_ids[1]
    rows: list[Row] = []
    with db.session() as session:
        project = session.get(Project, world.project_id)
        assert project is not None

        def timed_list(args: dict[str, str]) -> float:
            filters = filters_from_args(args, me=me)
            page = Page(page=int(args.get("page", 1)), limit=int(args.get("limit", 20)))
            started = time.perf_counter()
            found = list_bugs(session=session, project=project, filters=filters, page=page)
            bugs_out(session, found.bugs)
            session.rollback()  # end the read transaction as a request would
            return (time.perf_counter() - started) * 1000

        for label, queries, target in (
                ("list", list_queries(rng, world, opts.queries), 30.0),
                ("search", search_queries(rng, world, opts.queries), 100.0)):
            for _, args in queries[:20]:  # warm-up, not measured
                timed_list(args)
            by_kind: dict[str, list[float]] = {}
            for kind, args in queries:
                by_kind.setdefault(kind, []).append(timed_list(args))
            rows.append(Row(f"{label}: all", [t for ts in by_kind.values() for t in ts], target))
            rows += [Row(f"  {label}: {kind}", ts) for kind, ts in by_kind.items()]
            progress(f"  {label} done")
        similar_timings = []
        for i, (title, description) in enumerate(similar_queries(rng, world, opts.queries + 10)):
            started = time.perf_counter()
            ranked = similar_bugs(session=session, project=project, title=title,
                                  description=description)
            bugs_out(session, [bug for bug, _ in ranked])
            session.rollback()
            if i >= 10:
                similar_timings.append((time.perf_counter() - started) * 1000)
        rows.append(Row("similar", similar_timings))
        if opts.explain:
            explain(session, project, world, me)
    db.engine.dispose()
    progress("")
    print(f"bench.bugs_queries  {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
    print(f"data      {int(size[1]):,} bugs in one project; bugs table + indexes {size[0]}")
    print(f"machine   nproc {os.cpu_count()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("postgres  " + ", ".join(f"{k} {v}" for k, v in sorted(settings.items())))
    print("timings   service function + page rendering (bugs_out), ms; no HTTP")
    print()
    print(f"{'query':<42}{'n':>6}{'p50':>9}{'p95':>9}{'max':>9}{'mean':>9}  target")
    print("-" * 96)
    for row in rows:
        print(row.line())
    return rows


def explain(session: Any, project: Any, world: World, me: str) -> None:
    """EXPLAIN ANALYZE of one list and one search query, as the service builds them."""
    from sqlalchemy.dialects import postgresql
    from sqlmodel import col, select

    from bugs.models import Bug
    from bugs.reports import search
    from bugs.reports.schemas import filters_from_args

    for args in ({"status": "open", "category": "crash"}, {"sort": "priority"},
                 {"search": "flickers"}, {"search": world.names[5]}):
        filters = filters_from_args(args, me=me)
        conditions = [col(Bug.project_id) == project.id,
                      *search._dimension_conditions(Bug, filters, counts=False)]
        terms = search.search_terms(filters.search or "")
        conditions += search._search_conditions(terms)
        order = (search._relevance(" ".join(terms), terms).desc(), col(Bug.number).desc()) \
            if terms else search._ORDER[filters.sort or "newest"]
        statement = select(Bug).where(*conditions).order_by(*order).limit(20)
        compiled = statement.compile(dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
                                     compile_kwargs={"render_postcompile": True})
        plan = session.connection().exec_driver_sql(
            f"EXPLAIN (ANALYZE, BUFFERS) {compiled}", compiled.params).scalars().all()
        print(f"\nEXPLAIN ANALYZE {args}")
        print("\n".join(plan))
        session.rollback()


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    with database(opts.database_url, name="bench_bugs") as url:
        run(opts, url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
