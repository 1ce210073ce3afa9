"""Jobs carry a nonce in their tag on the cluster (computenet:<id>.<nonce>): another installation's
job with the same id on a shared cluster is never adopted as ours

Revision ID: 0022
Revises: 0021
"""
from alembic import op
import sqlalchemy as sa


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # existing jobs keep None: they were tagged computenet:<id> and are read back that way
    with op.batch_alter_table('jobs', schema=None) as batch:
        batch.add_column(sa.Column('tag_nonce', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch:
        batch.drop_column('tag_nonce')
