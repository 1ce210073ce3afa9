"""Interactive sessions: a JupyterLab (shell, desktop) started by a job and proxied by the platform

Revision ID: 0014
Revises: 0013
"""
from alembic import op
import sqlalchemy as sa

import computenet.store.types


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('interactive_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('app', sa.String(length=48), nullable=False),
    sa.Column('app_version', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('probe', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('secret', sa.String(length=64), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('port', sa.Integer(), nullable=True),
    sa.Column('created_at', computenet.store.types.UTCDateTime(), nullable=False),
    sa.Column('started_at', computenet.store.types.UTCDateTime(), nullable=True),
    sa.Column('ready_at', computenet.store.types.UTCDateTime(), nullable=True),
    sa.Column('last_activity_at', computenet.store.types.UTCDateTime(), nullable=True),
    sa.Column('ended_at', computenet.store.types.UTCDateTime(), nullable=True),
    sa.Column('ended_reason', sa.String(length=16), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_interactive_sessions_job_id_jobs')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_interactive_sessions_owner_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_interactive_sessions')),
    sa.UniqueConstraint('job_id', name=op.f('uq_interactive_sessions_job_id'))
    )
    with op.batch_alter_table('interactive_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_interactive_sessions_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_interactive_sessions_state'), ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('interactive_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_interactive_sessions_state'))
        batch_op.drop_index(batch_op.f('ix_interactive_sessions_owner_id'))
    op.drop_table('interactive_sessions')
