"""Worker leases (one per background task) and the optional record of runs

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa

import computenet.store.types


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('worker_leases',
    sa.Column('task', sa.String(length=120), nullable=False),
    sa.Column('holder', sa.String(length=120), nullable=True),
    sa.Column('fence', sa.Integer(), nullable=False),
    sa.Column('acquired_at', computenet.store.types.UTCDateTime(), nullable=True),
    sa.Column('heartbeat_at', computenet.store.types.UTCDateTime(), nullable=True),
    sa.Column('expires_at', computenet.store.types.UTCDateTime(), nullable=True),
    sa.Column('interval_s', sa.Float(), nullable=False),
    sa.Column('last_started_at', computenet.store.types.UTCDateTime(), nullable=True),
    sa.Column('last_success_at', computenet.store.types.UTCDateTime(), nullable=True),
    sa.Column('last_duration_s', sa.Float(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('last_error_at', computenet.store.types.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('task', name=op.f('pk_worker_leases'))
    )
    op.create_table('worker_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task', sa.String(length=120), nullable=False),
    sa.Column('holder', sa.String(length=120), nullable=False),
    sa.Column('fence', sa.Integer(), nullable=False),
    sa.Column('started_at', computenet.store.types.UTCDateTime(), nullable=False),
    sa.Column('ended_at', computenet.store.types.UTCDateTime(), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_runs'))
    )
    with op.batch_alter_table('worker_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_worker_runs_task'), ['task'], unique=False)
        batch_op.create_index(batch_op.f('ix_worker_runs_started_at'), ['started_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('worker_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_worker_runs_started_at'))
        batch_op.drop_index(batch_op.f('ix_worker_runs_task'))
    op.drop_table('worker_runs')
    op.drop_table('worker_leases')
