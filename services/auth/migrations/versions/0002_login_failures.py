"""The per-account sign-in throttle: failed logins per email hash and window.

Revision ID: 0002_login_failures
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_login_failures"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("email_hash", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_failures_window_started_at", "login_failures",
                    ["window_started_at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_window_started_at", table_name="login_failures")
    op.drop_table("login_failures")
