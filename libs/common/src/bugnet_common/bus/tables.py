"""The outbox, inbox and parked-message tables every service keeps in its own database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID


@dataclass(frozen=True)
class BusTables:
    outbox: sa.Table
    inbox: sa.Table
    parked: sa.Table


def _columns() -> dict[str, list[Any]]:
    return {
        "outbox": [
            sa.Column("id", UUID(as_uuid=False), primary_key=True),
            # Commit order within one transaction: created_at is the transaction's start time.
            sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
            sa.Column("subject", sa.Text, nullable=False),
            sa.Column("payload", sa.LargeBinary, nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                      server_default=sa.func.now()),
            sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
            sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("last_error", sa.Text, nullable=True),
        ],
        "inbox": [
            sa.Column("consumer", sa.Text, primary_key=True),
            sa.Column("event_id", sa.Text, primary_key=True),
            sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False,
                      server_default=sa.func.now()),
        ],
        "parked_messages": [
            sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
            sa.Column("consumer", sa.Text, nullable=False),
            sa.Column("subject", sa.Text, nullable=False),
            sa.Column("event_id", sa.Text, nullable=True),
            sa.Column("payload", sa.LargeBinary, nullable=False),
            sa.Column("error", sa.Text, nullable=False),
            sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False,
                      server_default=sa.func.now()),
        ],
    }


def _pending_index(table: str) -> tuple[str, list[str], dict[str, Any]]:
    return (f"ix_{table}_pending", ["seq"],
            {"postgresql_where": sa.text("published_at IS NULL")})


def bus_tables(metadata: sa.MetaData) -> BusTables:
    """Define the bus tables on a service's metadata."""
    cols = _columns()
    outbox = sa.Table("outbox", metadata, *cols["outbox"])
    name, _cols, kw = _pending_index("outbox")
    sa.Index(name, outbox.c.seq, **kw)
    inbox = sa.Table("inbox", metadata, *cols["inbox"])
    parked = sa.Table("parked_messages", metadata, *cols["parked_messages"])
    return BusTables(outbox=outbox, inbox=inbox, parked=parked)


OUTBOX_CHANNEL = "bugnet_outbox"

# Wakes the relay when a transaction that added events commits (NOTIFY is delivered at commit,
# once per statement), so an idle worker does not poll.
OUTBOX_NOTIFY_DDL: tuple[str, ...] = (
    f"""CREATE OR REPLACE FUNCTION bugnet_outbox_notify() RETURNS trigger
        LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('{OUTBOX_CHANNEL}', ''); RETURN NULL; END $$""",
    "DROP TRIGGER IF EXISTS outbox_notify ON outbox",
    "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
    "FOR EACH STATEMENT EXECUTE FUNCTION bugnet_outbox_notify()",
)


def create_bus_tables(op: Any) -> None:
    """For a service's first alembic migration: `create_bus_tables(op)`."""
    for table, columns in _columns().items():
        op.create_table(table, *columns)
    name, idx_cols, kw = _pending_index("outbox")
    op.create_index(name, "outbox", idx_cols, **kw)
    for statement in OUTBOX_NOTIFY_DDL:
        op.execute(statement)
