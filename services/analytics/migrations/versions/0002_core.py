"""The analytics core: read models of the bugs service, game sessions and their rollups,
performance snapshots and satisfaction ratings (see analytics/models.py for the invariants).

Other areas branch their migrations from this revision.

Revision ID: 0002_core
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002_core'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key_hash')
    )
    op.create_index(op.f('ix_api_keys_project_id'), 'api_keys', ['project_id'], unique=False)
    op.create_table('bug_occurrences',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('bug_id', sa.String(length=36), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('game_version', sa.String(length=50), nullable=True),
    sa.Column('platform', sa.String(length=50), nullable=True),
    sa.Column('player_key', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_index('ix_analytics_occurrences_bug', 'bug_occurrences', ['bug_id', 'occurred_at'], unique=False)
    op.create_index('ix_analytics_occurrences_project_at', 'bug_occurrences', ['project_id', 'occurred_at'], unique=False)
    op.create_table('bugs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('platform', sa.String(length=50), nullable=True),
    sa.Column('game_version', sa.String(length=50), nullable=True),
    sa.Column('fingerprint', sa.String(length=64), nullable=True),
    sa.Column('is_public', sa.Boolean(), nullable=False),
    sa.Column('occurrences', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_analytics_bugs_project_created', 'bugs', ['project_id', 'created_at'], unique=False)
    op.create_index('ix_analytics_bugs_project_fingerprint', 'bugs', ['project_id', 'fingerprint'], unique=False, postgresql_where=sa.text('fingerprint IS NOT NULL'))
    op.create_index('ix_analytics_bugs_project_resolved', 'bugs', ['project_id', 'resolved_at'], unique=False, postgresql_where=sa.text('resolved_at IS NOT NULL'))
    op.create_table('game_sessions',
    sa.Column('session_token', sa.String(length=200), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('crashed', sa.Boolean(), nullable=False),
    sa.Column('platform', sa.String(length=50), nullable=False),
    sa.Column('game_version', sa.String(length=50), nullable=False),
    sa.Column('os_info', sa.String(length=100), nullable=True),
    sa.Column('device_info', sa.String(length=200), nullable=True),
    sa.Column('steam_id', sa.String(length=30), nullable=True),
    sa.Column('device_id', sa.String(length=100), nullable=True),
    sa.Column('player_hash', sa.BigInteger(), nullable=True),
    sa.Column('started_by_end', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('session_token')
    )
    op.create_table('members',
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=True),
    sa.Column('permissions', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'user_id')
    )
    op.create_index(op.f('ix_members_user_id'), 'members', ['user_id'], unique=False)
    op.create_table('perf_snapshots',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('game_version', sa.String(length=50), nullable=False),
    sa.Column('platform', sa.String(length=50), nullable=False),
    sa.Column('fps', sa.Float(), nullable=False),
    sa.Column('frame_time_ms', sa.Float(), nullable=False),
    sa.Column('memory_used_mb', sa.Float(), nullable=False),
    sa.Column('scene', sa.String(length=200), nullable=True),
    sa.Column('scene_load_ms', sa.Float(), nullable=True),
    sa.Column('custom_metrics', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('bug_id', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_perf_project_bug', 'perf_snapshots', ['project_id', 'bug_id'], unique=False, postgresql_where=sa.text('bug_id IS NOT NULL'))
    op.create_index('ix_perf_project_created', 'perf_snapshots', ['project_id', 'created_at'], unique=False)
    op.create_table('player_days',
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('players', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('crashed_players', sa.BigInteger(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'day')
    )
    op.create_table('players',
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('player_hash', sa.BigInteger(), nullable=False),
    sa.Column('first_seen_day', sa.Date(), nullable=False),
    sa.Column('last_seen_day', sa.Date(), nullable=False),
    sa.Column('last_crashed_day', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('project_id', 'player_hash')
    )
    op.create_table('projects',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('owner_id', sa.String(length=36), nullable=True),
    sa.Column('settings', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('slug')
    )
    op.create_table('satisfaction_ratings',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('bug_id', sa.String(length=36), nullable=False),
    sa.Column('rater_key', sa.String(length=80), nullable=False),
    sa.Column('rating', sa.SmallInteger(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('bug_id', 'rater_key', name='uq_satisfaction_bug_rater')
    )
    op.create_index('ix_satisfaction_project_created', 'satisfaction_ratings', ['project_id', 'created_at'], unique=False)
    op.create_table('session_daily',
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('game_version', sa.String(length=50), nullable=False),
    sa.Column('platform', sa.String(length=50), nullable=False),
    sa.Column('sessions', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('crashed', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('first_started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_started_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'day', 'game_version', 'platform')
    )
    op.create_table('session_minutes',
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('minute', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sessions', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('crashed', sa.BigInteger(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'minute')
    )
    op.create_table('tombstones',
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'id')
    )


def downgrade() -> None:
    op.drop_table('tombstones')
    op.drop_table('session_minutes')
    op.drop_table('session_daily')
    op.drop_index('ix_satisfaction_project_created', table_name='satisfaction_ratings')
    op.drop_table('satisfaction_ratings')
    op.drop_table('projects')
    op.drop_table('players')
    op.drop_table('player_days')
    op.drop_index('ix_perf_project_created', table_name='perf_snapshots')
    op.drop_index('ix_perf_project_bug', table_name='perf_snapshots', postgresql_where=sa.text('bug_id IS NOT NULL'))
    op.drop_table('perf_snapshots')
    op.drop_index(op.f('ix_members_user_id'), table_name='members')
    op.drop_table('members')
    op.drop_table('game_sessions')
    op.drop_index('ix_analytics_bugs_project_resolved', table_name='bugs', postgresql_where=sa.text('resolved_at IS NOT NULL'))
    op.drop_index('ix_analytics_bugs_project_fingerprint', table_name='bugs', postgresql_where=sa.text('fingerprint IS NOT NULL'))
    op.drop_index('ix_analytics_bugs_project_created', table_name='bugs')
    op.drop_table('bugs')
    op.drop_index('ix_analytics_occurrences_project_at', table_name='bug_occurrences')
    op.drop_index('ix_analytics_occurrences_bug', table_name='bug_occurrences')
    op.drop_table('bug_occurrences')
    op.drop_index(op.f('ix_api_keys_project_id'), table_name='api_keys')
    op.drop_table('api_keys')
