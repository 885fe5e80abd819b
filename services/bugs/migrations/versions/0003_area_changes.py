"""Schema changes the bugs areas needed after the first domain migration.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


# --- reports/labels: definitions ---
# Kept literally in the migration (not imported): bugs/reports/search.py must spell the same
# expression for the planner to use the index.
PRIORITY_RANK_SQL = ("CASE priority WHEN 'critical' THEN 4 WHEN 'high' THEN 3 "
                     "WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END")
_DIMS = "project_id, status, priority, category, platform, assignee_id"
_KEY = ("{t}.project_id, {t}.status, {t}.priority, {t}.category, coalesce({t}.platform, ''), "
        "coalesce({t}.assignee_id, '')")
_UPSERT = (f"INSERT INTO bug_counts AS c ({_DIMS}, n) {{rows}} "
           f"ON CONFLICT ({_DIMS}) DO UPDATE SET n = c.n + excluded.n")
_CHANGED = ("(o.project_id, o.status, o.priority, o.category, o.platform, o.assignee_id) "
            "IS DISTINCT FROM (n.project_id, n.status, n.priority, n.category, n.platform, "
            "n.assignee_id)")
# One writer of a project's counters at a time, until it commits: transactions that change
# several counters (a bulk update, one UPDATE per bug) would otherwise lock them in different
# orders and could deadlock. Updates that change no counted column (occurrences, votes) skip it.
_LOCK = ("PERFORM pg_advisory_xact_lock(7261, hashtext(p)) FROM "
         "(SELECT DISTINCT project_id AS p FROM ({rows}) AS r ORDER BY 1) AS x")
BUG_COUNTS_DDL = f"""
CREATE TABLE bug_counts (
    project_id varchar(36) NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    status varchar(16) NOT NULL, priority varchar(16) NOT NULL, category varchar(16) NOT NULL,
    platform varchar(50) NOT NULL, assignee_id varchar(36) NOT NULL,
    n bigint NOT NULL DEFAULT 0,
    PRIMARY KEY ({_DIMS})
);
CREATE FUNCTION bug_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_LOCK.format(rows="SELECT project_id FROM new_rows")};
    {_UPSERT.format(rows=f"SELECT {_KEY.format(t='r')}, count(*) FROM new_rows r "
                         "GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6")};
    RETURN NULL;
END $$;
CREATE FUNCTION bug_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_LOCK.format(rows="SELECT project_id FROM old_rows")};
    -- Only decrements: a cascading project delete may already have removed the counters.
    UPDATE bug_counts c SET n = c.n - d.n
      FROM (SELECT {_KEY.format(t='r')}, count(*) FROM old_rows r GROUP BY 1, 2, 3, 4, 5, 6)
           AS d (project_id, status, priority, category, platform, assignee_id, n)
     WHERE (c.project_id, c.status, c.priority, c.category, c.platform, c.assignee_id)
         = (d.project_id, d.status, d.priority, d.category, d.platform, d.assignee_id);
    RETURN NULL;
END $$;
CREATE FUNCTION bug_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_LOCK.format(rows=f"SELECT o.project_id FROM old_rows o JOIN new_rows n USING (id) "
                       f"WHERE {_CHANGED}")};
    {_UPSERT.format(rows=f"SELECT k1, k2, k3, k4, k5, k6, sum(d) FROM ("
                         f"SELECT {_KEY.format(t='o')}, -1 FROM old_rows o JOIN new_rows n "
                         f"USING (id) WHERE {_CHANGED} UNION ALL "
                         f"SELECT {_KEY.format(t='n')}, 1 FROM old_rows o JOIN new_rows n "
                         f"USING (id) WHERE {_CHANGED}) AS x (k1, k2, k3, k4, k5, k6, d) "
                         "GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(d) <> 0 "
                         "ORDER BY 1, 2, 3, 4, 5, 6")};
    RETURN NULL;
END $$;
CREATE TRIGGER bug_counts_inserted AFTER INSERT ON bugs REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bug_counts_inserted();
CREATE TRIGGER bug_counts_deleted AFTER DELETE ON bugs REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bug_counts_deleted();
CREATE TRIGGER bug_counts_updated AFTER UPDATE ON bugs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bug_counts_updated();
INSERT INTO bug_counts ({_DIMS}, n)
SELECT {_KEY.format(t='b')}, count(*) FROM bugs b GROUP BY 1, 2, 3, 4, 5, 6;
"""


# --- sdk ---
_GIN_INDEXES = ("ix_bugs_search_fts", "ix_bugs_search_trgm", "ix_bugs_title_trgm")


def upgrade() -> None:
    # --- projects/team ---
    # --- reports/labels ---
    # Sorts of GET /bugs read these in order (LIMIT stops early) instead of sorting a project.
    op.execute(f"CREATE INDEX ix_bugs_project_priority ON bugs (project_id, ({PRIORITY_RANK_SQL}), number)")
    op.create_index("ix_bugs_project_votes", "bugs", ["project_id", "votes", "number"])
    op.create_index("ix_bugs_project_updated", "bugs", ["project_id", "updated_at", "number"])
    op.create_index("ix_bugs_project_version", "bugs", ["project_id", "game_version", "number"])
    op.execute("CREATE INDEX ix_bugs_project_platform ON bugs (project_id, lower(platform), number)")
    # Exact list totals without counting a big project's rows: one counter per combination of
    # the low-cardinality filters, kept by statement-level triggers (bulk loads stay cheap).
    op.execute(BUG_COUNTS_DDL)
    # --- sdk ---
    # SDK submits add ~2 KB texts at hundreds per second. A GIN index queues new entries in a
    # pending list that the insert which fills it merges into the index: with the default 4 MB
    # that merge stalls one batch of submits for tens of ms every few hundred reports (the p99
    # of bench/sdk_submit). 1 MB merges more often and more briefly (p99 114 -> 83 ms there,
    # for a few % more insert CPU), and searches have less pending list to scan.
    for name in _GIN_INDEXES:
        op.execute(f"ALTER INDEX {name} SET (gin_pending_list_limit = 1024)")
    # --- public ---
    op.create_index("ix_bugs_project_public_number", "bugs", ["project_id", "number"],
                    postgresql_where=sa.text("is_public"))
    pass


def downgrade() -> None:
    # --- sdk ---
    for name in _GIN_INDEXES:
        op.execute(f"ALTER INDEX {name} RESET (gin_pending_list_limit)")
    # --- reports/labels ---
    op.execute("DROP FUNCTION IF EXISTS bug_counts_inserted(), bug_counts_updated(), "
               "bug_counts_deleted() CASCADE")
    op.execute("DROP TABLE IF EXISTS bug_counts")
    for name in ("ix_bugs_project_priority", "ix_bugs_project_votes", "ix_bugs_project_updated",
                 "ix_bugs_project_version", "ix_bugs_project_platform"):
        op.drop_index(name, table_name="bugs")
    # --- public ---
    op.drop_index("ix_bugs_project_public_number", table_name="bugs")
    pass
