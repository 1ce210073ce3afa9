"""People and roles: a user's display name, e-mail verification, language and status (active,
suspended, deleted); role grants (operator, finance, vendor, tenant admin of a tenant), into which
the older single ``users.role`` is carried over

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMNs (no batch copy of users: SQLite cannot drop a table other rows refer to)
    op.add_column('users', sa.Column('display_name', sa.String(length=128), server_default='', nullable=False))
    op.add_column('users', sa.Column('email_verified', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('users', sa.Column('language', sa.String(length=8), server_default='en', nullable=False))
    op.add_column('users', sa.Column('status', sa.String(length=16), server_default='active', nullable=False))
    op.add_column('users', sa.Column('status_reason', sa.Text(), server_default='', nullable=False))

    op.create_table(
        'role_grants',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=True),
        sa.Column('granted_by', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('granted_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_role_grants_tenant_id_tenants')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_role_grants_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_role_grants')),
        sa.UniqueConstraint('user_id', 'role', 'tenant_id', name=op.f('uq_role_grants_user_id_role_tenant_id')),
    )
    with op.batch_alter_table('role_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_grants_user_id'), ['user_id'], unique=False)

    # the older single role becomes a grant (a tenant admin of the user's own tenant); the column
    # stays, read as one more grant by services/tenancy/roles.py, and is reset so that a revoke is final
    op.execute("INSERT INTO role_grants (user_id, role, tenant_id, granted_by, reason, granted_at) "
               "SELECT id, role, NULL, 'migration 0011', 'users.role before 0011', CURRENT_TIMESTAMP FROM users "
               "WHERE role IN ('operator', 'finance', 'vendor')")
    op.execute("INSERT INTO role_grants (user_id, role, tenant_id, granted_by, reason, granted_at) "
               "SELECT id, role, tenant_id, 'migration 0011', 'users.role before 0011', CURRENT_TIMESTAMP "
               "FROM users WHERE role = 'tenant_admin' AND tenant_id IS NOT NULL")
    op.execute("UPDATE users SET role = 'user' WHERE role IN ('operator', 'finance', 'vendor') "
               "OR (role = 'tenant_admin' AND tenant_id IS NOT NULL)")


def downgrade() -> None:
    # one role per user again: the first grant of each (a tenant admin keeps users.tenant_id)
    op.execute("UPDATE users SET role = COALESCE((SELECT g.role FROM role_grants g WHERE g.user_id = users.id "
               "ORDER BY g.id LIMIT 1), role)")
    with op.batch_alter_table('role_grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_role_grants_user_id'))
    op.drop_table('role_grants')
    for column in ('status_reason', 'status', 'language', 'email_verified', 'display_name'):
        op.drop_column('users', column)  # SQLite 3.35+ drops a column in place (no copy of users)
