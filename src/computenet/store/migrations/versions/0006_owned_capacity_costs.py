"""owned capacity costs per cluster: node purchase price and depreciation, power draw, PUE and price, other opex per node-hour (the operator reports' cost of capacity)

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

COLUMNS = ('node_capex', 'depreciation_years', 'node_watts', 'power_price_kwh', 'pue', 'node_opex_hour')


def upgrade() -> None:
    # Money and Rate are integer minor units (cents, millionths) on every backend
    with op.batch_alter_table('clusters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('node_capex', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('depreciation_years', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('node_watts', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('power_price_kwh', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('pue', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('node_opex_hour', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('clusters', schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
