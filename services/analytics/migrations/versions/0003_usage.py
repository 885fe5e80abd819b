"""API usage: the gateway's request counts per project, UTC day, endpoint group and status
class, and the counts waiting for their project to be known (analytics/usage/models.py).

Revision ID: 0003_usage
Revises: 0002_core
"""
import sqlalchemy as sa
from alembic import op

revision = '0003_usage'
down_revision = '0002_core'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'api_usage_daily',
        sa.Column('project_id', sa.String(length=36), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('endpoint_group', sa.String(length=32), nullable=False),
        sa.Column('status_class', sa.String(length=8), nullable=False),
        sa.Column('requests', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('rate_limited', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('rate_limited_by_gateway', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('refused_by_gateway', sa.BigInteger(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('project_id', 'day', 'endpoint_group', 'status_class'),
    )
    op.create_table(
        'api_usage_pending',
        sa.Column('id', sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column('project_slug', sa.String(length=64), nullable=True),
        sa.Column('api_key_hash', sa.String(length=64), nullable=True),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('endpoint_group', sa.String(length=32), nullable=False),
        sa.Column('status_class', sa.String(length=8), nullable=False),
        sa.Column('requests', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('rate_limited', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('rate_limited_by_gateway', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('refused_by_gateway', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_api_usage_pending_received_at', 'api_usage_pending', ['received_at'])


def downgrade() -> None:
    op.drop_table('api_usage_pending')
    op.drop_table('api_usage_daily')
