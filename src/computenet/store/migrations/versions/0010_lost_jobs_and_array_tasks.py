"""Jobs a scheduler lost: a job row is keyed by (cluster, native id, submit time), since Slurm
reuses the ids of jobs it forgot; when a live job went missing (missing_since); and the array
tasks each accounting record stands for, so arrays settle task by task

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('missing_since', sa.DateTime(), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_jobs_cluster_id_native_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_jobs_cluster_id_native_id_submitted_at'),
                                          ['cluster_id', 'native_id', 'submitted_at'])

    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('array_tasks', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.drop_column('array_tasks')

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_jobs_cluster_id_native_id_submitted_at'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_jobs_cluster_id_native_id'), ['cluster_id', 'native_id'])
        batch_op.drop_column('missing_since')
