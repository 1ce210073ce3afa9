"""job samples and job profiles: the sampling agent's time series per job, one line per ended monitored job (the application characteristics), and whether a job is monitored

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('job_profiles',
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('app', sa.String(length=200), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('cores', sa.Integer(), nullable=False),
    sa.Column('gpus', sa.Integer(), nullable=False),
    sa.Column('runtime_s', sa.Float(), nullable=False),
    sa.Column('time_limit_s', sa.Integer(), nullable=True),
    sa.Column('cpu_efficiency', sa.Float(), nullable=True),
    sa.Column('peak_rss', sa.BigInteger(), nullable=False),
    sa.Column('gpu_utilisation', sa.Float(), nullable=True),
    sa.Column('price', sa.BigInteger(), nullable=False),
    sa.Column('wasted', sa.BigInteger(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['cluster_id'], ['clusters.id'], name=op.f('fk_job_profiles_cluster_id_clusters')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_profiles_job_id_jobs')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_job_profiles_user_id_users')),
    sa.PrimaryKeyConstraint('job_id', name=op.f('pk_job_profiles'))
    )
    with op.batch_alter_table('job_profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_profiles_app'), ['app'], unique=False)
        batch_op.create_index(batch_op.f('ix_job_profiles_user_id'), ['user_id'], unique=False)

    op.create_table('job_samples',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('t', sa.Float(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('cpu_s', sa.Float(), nullable=False),
    sa.Column('cores', sa.Float(), nullable=False),
    sa.Column('rss', sa.BigInteger(), nullable=False),
    sa.Column('read_bytes', sa.BigInteger(), nullable=False),
    sa.Column('write_bytes', sa.BigInteger(), nullable=False),
    sa.Column('nproc', sa.Integer(), nullable=False),
    sa.Column('nthreads', sa.Integer(), nullable=False),
    sa.Column('gpus', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_samples_job_id_jobs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_samples')),
    sa.UniqueConstraint('job_id', 't', name=op.f('uq_job_samples_job_id_t'))
    )
    with op.batch_alter_table('job_samples', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_samples_job_id'), ['job_id'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('monitor_state', sa.String(length=8), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('monitor_state')

    with op.batch_alter_table('job_samples', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_samples_job_id'))

    op.drop_table('job_samples')
    with op.batch_alter_table('job_profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_profiles_user_id'))
        batch_op.drop_index(batch_op.f('ix_job_profiles_app'))

    op.drop_table('job_profiles')
