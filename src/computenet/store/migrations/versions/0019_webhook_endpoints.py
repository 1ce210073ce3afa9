"""Webhook endpoints fed from the events outbox; the per-account webhook URL becomes one of them

Revision ID: 0019
Revises: 0018
"""
import base64
import secrets
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

import computenet.store.types


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

# what the per-account webhook was sent before: the account's notices
LEGACY_TYPES = ["balance.*", "account.notice"]


def upgrade() -> None:
    op.create_table('webhook_endpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('event_types', sa.JSON(), nullable=False),
    sa.Column('secret', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('legacy', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', computenet.store.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_webhook_endpoints_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints'))
    )
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_endpoints_account_id'), ['account_id'], unique=False)
    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('event_type', sa.String(length=48), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', computenet.store.types.UTCDateTime(), nullable=False),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', computenet.store.types.UTCDateTime(), nullable=False),
    sa.Column('finished_at', computenet.store.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'],
                            name=op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('endpoint_id', 'event_id', name=op.f('uq_webhook_deliveries_endpoint_id_event_id'))
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_endpoint_id'), ['endpoint_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_finished_at'), ['finished_at'], unique=False)
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fanned_out_at', computenet.store.types.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_events_fanned_out_at'), ['fanned_out_at'], unique=False)

    conn = op.get_bind()
    now = datetime.now(timezone.utc)
    # events from before: their notices went out by the older path already; none is sent twice
    conn.execute(sa.text("UPDATE outbox_events SET fanned_out_at = occurred_at"))
    endpoints = sa.table('webhook_endpoints', sa.column('account_id', sa.Integer), sa.column('url', sa.Text),
                         sa.column('event_types', sa.JSON), sa.column('secret', sa.String),
                         sa.column('description', sa.String), sa.column('legacy', sa.Boolean),
                         sa.column('created_by', sa.String),
                         sa.column('created_at', computenet.store.types.UTCDateTime()))
    for account_id, url in conn.execute(sa.text("SELECT id, webhook_url FROM accounts WHERE webhook_url IS NOT NULL")):
        conn.execute(endpoints.insert().values(
            account_id=account_id, url=url, event_types=LEGACY_TYPES, legacy=True, created_by="migration 0017",
            secret="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(), description="account webhook",
            created_at=now))


def downgrade() -> None:
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_events_fanned_out_at'))
        batch_op.drop_column('fanned_out_at')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_finished_at'))
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_event_id'))
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_endpoint_id'))
    op.drop_table('webhook_deliveries')
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_endpoints_account_id'))
    op.drop_table('webhook_endpoints')
