"""The outbox, inbox and parked-message tables.

Revision ID: 0001
Revises:
"""

from alembic import op

from bugnet_common.bus.tables import create_bus_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_bus_tables(op)


def downgrade() -> None:
    for table in ("parked_messages", "inbox", "outbox"):
        op.drop_table(table)
