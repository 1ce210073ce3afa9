"""API tokens expire and have a scope (issue 13, item 10)

Tokens issued before this revision keep working: they get scope "full" and
expire 365 days after the upgrade (the default auth.token_max_days), so a
deployment has a year to replace them; `cnet admin tokens list` shows when.

Revision ID: 0008
Revises: 0007
"""
from datetime import datetime, timedelta, timezone

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

EXISTING_TOKENS_LIVE = timedelta(days=365)


def upgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('scope', sa.String(length=8), nullable=False, server_default='full'))
    # stored as naive UTC, as the models' UTCDateTime does
    expiry = (datetime.now(timezone.utc) + EXISTING_TOKENS_LIVE).replace(tzinfo=None)
    tokens = sa.table('api_tokens', sa.column('expires_at', sa.DateTime()))
    op.execute(tokens.update().where(tokens.c.expires_at.is_(None)).values(expires_at=expiry))
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.alter_column('expires_at', existing_type=sa.DateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('scope')
        batch_op.drop_column('expires_at')
