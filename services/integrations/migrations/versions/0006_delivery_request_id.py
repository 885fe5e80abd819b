"""Deliveries remember the request id of what caused them (their log lines carry it).

Revision ID: 0006_delivery_request_id
Revises: 0002_core

A branch of 0002_core, where `deliveries` was created; `migrate()` upgrades to heads.
"""
import sqlalchemy as sa
from alembic import op

revision = '0006_delivery_request_id'
down_revision = '0002_core'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('deliveries', sa.Column('request_id', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('deliveries', 'request_id')
