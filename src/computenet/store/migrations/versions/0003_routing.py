"""clusters registered through the API, unix identities, partition node names, cluster registry fields (region, site, ownership, costs, tags, circuit breaker) and routing decisions on jobs

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
        batch_op.add_column(sa.Column('features', sa.JSON(), nullable=True))
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('routing', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('predicted_start', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('reroutes', sa.Integer(), server_default='0', nullable=False))


    op.create_table('unix_identities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=True),
    sa.Column('unix_user', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['cluster_id'], ['clusters.id'], name=op.f('fk_unix_identities_cluster_id_clusters')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_unix_identities_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unix_identities')),
    sa.UniqueConstraint('user_id', 'cluster_id', name=op.f('uq_unix_identities_user_id_cluster_id'))
    )
    with op.batch_alter_table('unix_identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unix_identities_user_id'), ['user_id'], unique=False)
    op.create_table('registered_clusters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registered_clusters')),
    sa.UniqueConstraint('name', name=op.f('uq_registered_clusters_name'))
    )


def downgrade() -> None:
    op.drop_table('registered_clusters')
    op.drop_table('unix_identities')
    with op.batch_alter_table('partitions', schema=None) as batch_op:
        batch_op.drop_column('features')
        batch_op.drop_column('node_names')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        for column in ('reroutes', 'predicted_start', 'routing'):
            batch_op.drop_column(column)
    with op.batch_alter_table('clusters', schema=None) as batch_op:
        for column in ('breaker_open_until', 'failures', 'tags', 'cost_gpu_hour', 'cost_core_hour', 'ownership',
                       'site', 'region'):
            batch_op.drop_column(column)
