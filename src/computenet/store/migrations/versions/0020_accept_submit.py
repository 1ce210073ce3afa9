"""Accept, then submit: a job accepted for the submitter task, its claim, and an idempotency key;
an index for a user's newest jobs (GET /jobs on a table of a million jobs scanned it backwards by id)

Revision ID: 0020
Revises: 0019
"""
from alembic import op
import sqlalchemy as sa

import computenet.store.types


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('queued_at', computenet.store.types.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('submit_claim', sa.String(length=80), nullable=True))
        batch.add_column(sa.Column('submit_claimed_at', computenet.store.types.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('idempotency_key', sa.String(length=200), nullable=True))
        batch.create_unique_constraint('uq_jobs_owner_id_idempotency_key', ['owner_id', 'idempotency_key'])
    op.create_index('ix_jobs_owner_id_id', 'jobs', ['owner_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_jobs_owner_id_id', table_name='jobs')
    with op.batch_alter_table('jobs') as batch:
        batch.drop_constraint('uq_jobs_owner_id_idempotency_key', type_='unique')
        batch.drop_column('idempotency_key')
        batch.drop_column('submit_claimed_at')
        batch.drop_column('submit_claim')
        batch.drop_column('queued_at')
