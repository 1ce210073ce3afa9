"""sstat snapshots of running steps (every node and task), and each job's stored sample interval and kept gaps (downsampled series of old jobs)

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('job_step_samples',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('t', sa.Float(), nullable=False),
    sa.Column('step', sa.String(length=32), nullable=False),
    sa.Column('ntasks', sa.Integer(), nullable=False),
    sa.Column('nodes', sa.Integer(), nullable=False),
    sa.Column('cpu_s', sa.Float(), nullable=False),
    sa.Column('rss', sa.BigInteger(), nullable=False),
    sa.Column('read_bytes', sa.BigInteger(), nullable=False),
    sa.Column('write_bytes', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_step_samples_job_id_jobs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_step_samples')),
    sa.UniqueConstraint('job_id', 't', 'step', name=op.f('uq_job_step_samples_job_id_t_step'))
    )
    with op.batch_alter_table('job_step_samples', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_step_samples_job_id'), ['job_id'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sample_interval_s', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('sample_gaps', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('sample_gaps')
        batch_op.drop_column('sample_interval_s')

    with op.batch_alter_table('job_step_samples', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_step_samples_job_id'))

    op.drop_table('job_step_samples')
