"""Regressions and the crash signals' cooldown state (analytics/regressions/models.py), the
rollups of crash reports with the triggers that keep them (analytics/crashes/models.py), and
an index of the bugs read model by release (analytics/releases/models.py).

Revision ID: 0004_regressions
Revises: 0002_core
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_regressions"
down_revision = "0002_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "regressions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=50), nullable=True),
        sa.Column("previous_version", sa.String(length=50), nullable=True),
        sa.Column("bug_id", sa.String(length=36), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "dedupe_key", name="uq_regressions_project_key"),
    )
    op.create_index("ix_regressions_project_detected", "regressions",
                    ["project_id", "detected_at"], unique=False)
    op.create_table(
        "crash_signals",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("signaled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "kind"),
    )


    for table, extra in (("crash_daily", "day"), ("crash_player_days", "day")):
        cols = [sa.Column("project_id", sa.String(length=36), nullable=False),
                sa.Column("bug_id", sa.String(length=36), nullable=False),
                sa.Column("version", sa.String(length=50), nullable=False),
                sa.Column(extra, sa.Date(), nullable=False)]
        if table == "crash_daily":
            cols += [sa.Column("occurrences", sa.BigInteger(), nullable=False),
                     sa.Column("last_at", sa.DateTime(timezone=True), nullable=False)]
        else:
            cols += [sa.Column("players", sa.BigInteger(), nullable=False)]
        op.create_table(table, *cols,
                        sa.PrimaryKeyConstraint("project_id", "bug_id", "version", extra))
    op.create_table(
        "crash_players",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("bug_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.String(length=50), nullable=False),
        sa.Column("player_key", sa.String(length=200), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "bug_id", "version", "player_key"),
    )
    # The top crash groups of a window read one scope's days of every bug of a project:
    # covering, so that is an index-only scan.
    op.create_index("ix_crash_daily_scope_day", "crash_daily", ["project_id", "version", "day"],
                    unique=False, postgresql_include=["bug_id", "occurrences", "last_at"])
    op.create_table(
        "crash_weekly",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("bug_id", sa.String(length=36), nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("occurrences", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "bug_id", "week"),
    )
    op.create_index("ix_crash_weekly_week", "crash_weekly", ["project_id", "week"],
                    unique=False, postgresql_include=["bug_id", "occurrences", "last_at"])
    op.create_index("ix_analytics_bugs_project_version", "bugs", ["project_id", "game_version"],
                    unique=False, postgresql_where=sa.text("game_version IS NOT NULL"))
    op.execute(ROLLUP_FUNCTIONS)
    op.execute("CREATE TRIGGER bug_occurrences_crash_rollup AFTER INSERT ON bug_occurrences "
               "FOR EACH ROW EXECUTE FUNCTION crash_rollup_add()")
    op.execute("CREATE TRIGGER bugs_crash_rollup_forget AFTER DELETE ON bugs "
               "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT "
               "EXECUTE FUNCTION crash_rollup_forget()")


# One report: +1 in its week, +1 in each of its scopes ('' and its version) that day; its
# player's newest day per scope moves forward (never back: a late report of an older day
# changes no player count). Deleted bugs take their rows along (one statement per delete).
ROLLUP_FUNCTIONS = """
CREATE FUNCTION crash_rollup_add() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d date := (NEW.occurred_at AT TIME ZONE 'UTC')::date;
    scope text;
    prev date;
BEGIN
    INSERT INTO crash_weekly AS w (project_id, bug_id, week, occurrences, last_at)
    VALUES (NEW.project_id, NEW.bug_id, date_trunc('week', d)::date, 1, NEW.occurred_at)
    ON CONFLICT (project_id, bug_id, week) DO UPDATE
        SET occurrences = w.occurrences + 1, last_at = greatest(w.last_at, EXCLUDED.last_at);
    FOREACH scope IN ARRAY CASE WHEN coalesce(NEW.game_version, '') = '' THEN ARRAY['']
                                ELSE ARRAY['', NEW.game_version] END LOOP
        INSERT INTO crash_daily AS c (project_id, bug_id, version, day, occurrences, last_at)
        VALUES (NEW.project_id, NEW.bug_id, scope, d, 1, NEW.occurred_at)
        ON CONFLICT (project_id, bug_id, version, day) DO UPDATE
            SET occurrences = c.occurrences + 1, last_at = greatest(c.last_at, EXCLUDED.last_at);
        CONTINUE WHEN NEW.player_key IS NULL;
        INSERT INTO crash_players (project_id, bug_id, version, player_key, last_day)
        VALUES (NEW.project_id, NEW.bug_id, scope, NEW.player_key, d)
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            prev := NULL;
        ELSE
            SELECT last_day INTO prev FROM crash_players
            WHERE project_id = NEW.project_id AND bug_id = NEW.bug_id AND version = scope
                  AND player_key = NEW.player_key FOR UPDATE;
            CONTINUE WHEN prev >= d;
            UPDATE crash_players SET last_day = d
            WHERE project_id = NEW.project_id AND bug_id = NEW.bug_id AND version = scope
                  AND player_key = NEW.player_key;
            UPDATE crash_player_days SET players = players - 1
            WHERE project_id = NEW.project_id AND bug_id = NEW.bug_id AND version = scope
                  AND day = prev;
        END IF;
        INSERT INTO crash_player_days AS p (project_id, bug_id, version, day, players)
        VALUES (NEW.project_id, NEW.bug_id, scope, d, 1)
        ON CONFLICT (project_id, bug_id, version, day) DO UPDATE SET players = p.players + 1;
    END LOOP;
    RETURN NULL;
END $$;

CREATE FUNCTION crash_rollup_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM crash_daily c USING gone g WHERE c.project_id = g.project_id AND c.bug_id = g.id;
    DELETE FROM crash_weekly c USING gone g WHERE c.project_id = g.project_id AND c.bug_id = g.id;
    DELETE FROM crash_players c USING gone g
    WHERE c.project_id = g.project_id AND c.bug_id = g.id;
    DELETE FROM crash_player_days c USING gone g
    WHERE c.project_id = g.project_id AND c.bug_id = g.id;
    RETURN NULL;
END $$;
"""


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS bugs_crash_rollup_forget ON bugs")
    op.execute("DROP TRIGGER IF EXISTS bug_occurrences_crash_rollup ON bug_occurrences")
    op.execute("DROP FUNCTION IF EXISTS crash_rollup_forget()")
    op.execute("DROP FUNCTION IF EXISTS crash_rollup_add()")
    op.drop_index("ix_analytics_bugs_project_version", table_name="bugs")
    for table in ("crash_weekly", "crash_player_days", "crash_players", "crash_daily"):
        op.drop_table(table)
    op.drop_table("crash_signals")
    op.drop_index("ix_regressions_project_detected", table_name="regressions")
    op.drop_table("regressions")
