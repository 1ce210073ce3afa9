"""Invoices: a numbered invoice per account and closed month, its document frozen when issued

Revision ID: 0023
Revises: 0022
"""
from alembic import op
import sqlalchemy as sa

import computenet.store.types


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'invoices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('number', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('issued_at', computenet.store.types.UTCDateTime(), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=False),
        sa.Column('document', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name='fk_invoices_account_id_accounts'),
        sa.PrimaryKeyConstraint('id', name='pk_invoices'),
        sa.UniqueConstraint('number', name='uq_invoices_number'),
        sa.UniqueConstraint('account_id', 'month', name='uq_invoices_account_id_month'),
    )
    op.create_index('ix_invoices_account_id', 'invoices', ['account_id'])


def downgrade() -> None:
    op.drop_index('ix_invoices_account_id', table_name='invoices')
    op.drop_table('invoices')
