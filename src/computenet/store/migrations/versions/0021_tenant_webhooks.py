"""Tenant-wide webhook endpoints: an endpoint belongs to an account or to a tenant

Revision ID: 0021
Revises: 0020
"""
from alembic import op
import sqlalchemy as sa


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch:
        batch.add_column(sa.Column('tenant_id', sa.Integer(), nullable=True))
        batch.alter_column('account_id', existing_type=sa.Integer(), nullable=True)
        batch.create_foreign_key(batch.f('fk_webhook_endpoints_tenant_id_tenants'), 'tenants', ['tenant_id'], ['id'])
        batch.create_index(batch.f('ix_webhook_endpoints_tenant_id'), ['tenant_id'], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM webhook_deliveries WHERE endpoint_id IN "
               "(SELECT id FROM webhook_endpoints WHERE account_id IS NULL)")
    op.execute("DELETE FROM webhook_endpoints WHERE account_id IS NULL")
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch:
        batch.drop_index(batch.f('ix_webhook_endpoints_tenant_id'))
        batch.drop_constraint(batch.f('fk_webhook_endpoints_tenant_id_tenants'), type_='foreignkey')
        batch.drop_column('tenant_id')
        batch.alter_column('account_id', existing_type=sa.Integer(), nullable=False)
