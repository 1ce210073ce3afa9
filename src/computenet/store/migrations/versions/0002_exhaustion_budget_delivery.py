"""exhaustion policy, project budgets, webhooks, notice deliveries, jobs paused for funds

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        # 0001 declared these two with use_alter (they close a cycle), and
        # create_table leaves such keys out: add them where ALTER can
        op.create_foreign_key(op.f('fk_users_default_account_id_accounts'), 'users', 'accounts',
                              ['default_account_id'], ['id'])
        op.create_foreign_key(op.f('fk_jobs_hold_id_transfers'), 'jobs', 'transfers', ['hold_id'], ['id'])
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('exhaustion_policy', sa.String(length=8), server_default='block', nullable=False))
        batch_op.add_column(sa.Column('exhaustion_grace_minutes', sa.Integer(), server_default='60', nullable=False))
        batch_op.add_column(sa.Column('exhausted_since', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('budget', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('budget_period', sa.String(length=8), server_default='month', nullable=False))
        batch_op.add_column(sa.Column('webhook_url', sa.Text(), nullable=True))
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_for_funds_at', sa.DateTime(), nullable=True))
    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('target', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('delivered_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_deliveries_notification_id_notifications')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries')),
    sa.UniqueConstraint('notification_id', 'channel', 'target', name=op.f('uq_deliveries_notification_id_channel_target'))
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deliveries_notification_id'), ['notification_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliveries_next_attempt_at'), ['next_attempt_at'], unique=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f('fk_jobs_hold_id_transfers'), 'jobs', type_='foreignkey')
        op.drop_constraint(op.f('fk_users_default_account_id_accounts'), 'users', type_='foreignkey')
    op.drop_table('deliveries')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('paused_for_funds_at')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        for column in ('webhook_url', 'budget_period', 'budget', 'exhausted_since', 'exhaustion_grace_minutes',
                       'exhaustion_policy'):
            batch_op.drop_column(column)
