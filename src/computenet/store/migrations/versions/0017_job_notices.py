"""A user's choice of how to hear that their job ended (off, in the portal, or also by e-mail)

Revision ID: 0017
Revises: 0016
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('notify_job_ended', sa.String(length=8), nullable=False, server_default='app'))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_column('notify_job_ended')
