"""Git integrations, issues and their bugs read model; Steam integrations and reviews.

Revision ID: 0004_git_steam
Revises: 0002_core

A branch of 0002_core (beside the alerts/notifications branch); `migrate()` upgrades to heads.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0004_git_steam'
down_revision = '0002_core'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('git_bug_refs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('priority', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('platform', sa.Text(), nullable=True),
    sa.Column('game_version', sa.Text(), nullable=True),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_git_bug_refs_project_id'), 'git_bug_refs', ['project_id'], unique=False)
    op.create_table('git_integrations',
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('repository', sa.Text(), nullable=False),
    sa.Column('base_url', sa.Text(), nullable=True),
    sa.Column('token_encrypted', sa.Text(), nullable=False),
    sa.Column('token_hint', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id')
    )
    op.create_table('steam_integrations',
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.BigInteger(), nullable=False),
    sa.Column('api_key_encrypted', sa.Text(), nullable=True),
    sa.Column('api_key_hint', sa.String(length=16), nullable=True),
    sa.Column('summary', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('backfill_cursor', sa.Text(), nullable=True),
    sa.Column('sync_lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id')
    )
    op.create_table('git_issues',
    sa.Column('bug_id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('repository', sa.Text(), nullable=False),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('number', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['bug_id'], ['git_bug_refs.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('bug_id')
    )
    op.create_index(op.f('ix_git_issues_project_id'), 'git_issues', ['project_id'], unique=False)
    op.create_table('steam_reviews',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.BigInteger(), nullable=False),
    sa.Column('recommendation_id', sa.String(length=32), nullable=False),
    sa.Column('author_steam_id', sa.String(length=32), nullable=True),
    sa.Column('language', sa.String(length=32), nullable=True),
    sa.Column('review', sa.Text(), nullable=False),
    sa.Column('voted_up', sa.Boolean(), nullable=False),
    sa.Column('votes_up', sa.Integer(), nullable=False),
    sa.Column('playtime_at_review_minutes', sa.Integer(), nullable=True),
    sa.Column('mentions', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['steam_integrations.project_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'recommendation_id', name='uq_steam_reviews_recommendation')
    )
    op.create_index('ix_steam_reviews_project_created', 'steam_reviews', ['project_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_steam_reviews_project_created', table_name='steam_reviews')
    op.drop_table('steam_reviews')
    op.drop_index(op.f('ix_git_issues_project_id'), table_name='git_issues')
    op.drop_table('git_issues')
    op.drop_table('steam_integrations')
    op.drop_table('git_integrations')
    op.drop_index(op.f('ix_git_bug_refs_project_id'), table_name='git_bug_refs')
    op.drop_table('git_bug_refs')
