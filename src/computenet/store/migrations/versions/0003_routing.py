"""partition node names, cluster registry fields (region, site, ownership, costs, tags, circuit breaker) and routing decisions on jobs

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clusters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('region', sa.String(length=32), server_default='', nullable=False))
        batch_op.add_column(sa.Column('site', sa.String(length=64), server_default='', nullable=False))
        batch_op.add_column(sa.Column('ownership', sa.String(length=8), server_default='owned', nullable=False))
        batch_op.add_column(sa.Column('cost_core_hour', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('cost_gpu_hour', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('tags', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('failures', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('breaker_open_until', sa.DateTime(), nullable=True))
    with op.batch_alter_table('partitions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('node_names', sa.JSON(), nullable=True))
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('routing', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('predicted_start', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('reroutes', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('partitions', schema=None) as batch_op:
        batch_op.drop_column('node_names')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        for column in ('reroutes', 'predicted_start', 'routing'):
            batch_op.drop_column(column)
    with op.batch_alter_table('clusters', schema=None) as batch_op:
        for column in ('breaker_open_until', 'failures', 'tags', 'cost_gpu_hour', 'cost_core_hour', 'ownership',
                       'site', 'region'):
            batch_op.drop_column(column)
