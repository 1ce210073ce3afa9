"""sub-cent usage is kept, not rounded away: the exact rated amount of each charge (billionths),
each customer ledger account's unposted sub-cent carry, and what each charge transfer moved
into or out of that carry

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # billionths of the currency, as integers on every backend (store.types.FineMoney)
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('exact_amount', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subcent_carry', sa.BigInteger(), server_default='0', nullable=False))
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subcent', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.drop_column('subcent')
    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.drop_column('subcent_carry')
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.drop_column('exact_amount')
