"""Tickets and cookies for the sessions' own origin (issue 18: a separate origin for sessions)

Revision ID: 0018
Revises: 0017
"""
from alembic import op
import sqlalchemy as sa

import computenet.store.types


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('session_access',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('web_session_id', sa.Integer(), nullable=True),
    sa.Column('created_at', computenet.store.types.UTCDateTime(), nullable=False),
    sa.Column('expires_at', computenet.store.types.UTCDateTime(), nullable=False),
    sa.Column('used_at', computenet.store.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['session_id'], ['interactive_sessions.id'], name=op.f('fk_session_access_session_id_interactive_sessions')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_session_access_user_id_users')),
    sa.ForeignKeyConstraint(['web_session_id'], ['web_sessions.id'], name=op.f('fk_session_access_web_session_id_web_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_session_access')),
    sa.UniqueConstraint('secret_hash', name=op.f('uq_session_access_secret_hash'))
    )
    with op.batch_alter_table('session_access', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_session_access_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_session_access_session_id'), ['session_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('session_access', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_session_access_session_id'))
        batch_op.drop_index(batch_op.f('ix_session_access_expires_at'))
    op.drop_table('session_access')
