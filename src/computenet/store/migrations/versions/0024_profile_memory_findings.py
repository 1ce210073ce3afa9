"""Job profiles keep the memory asked for and each finding's code and cost: the efficiency report
prices over-requested memory and names the findings that cost most, long after the job's events are gone

Revision ID: 0024
Revises: 0023
"""
from alembic import op
import sqlalchemy as sa


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('job_profiles') as batch:
        batch.add_column(sa.Column('mem_requested_bytes', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('findings', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('job_profiles') as batch:
        batch.drop_column('findings')
        batch.drop_column('mem_requested_bytes')
