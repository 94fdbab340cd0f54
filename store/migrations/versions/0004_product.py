"""product data: account links, used link tokens, traits, ingested message ids, pending events

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-02 01:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('account_links',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('account_id'),
    sa.UniqueConstraint('user_id')
    )
    op.create_table('used_link_tokens',
    sa.Column('token_id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token_id')
    )
    with op.batch_alter_table('used_link_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_used_link_tokens_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_used_link_tokens_expires_at'), ['expires_at'], unique=False)
    op.create_table('traits',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value_type', sa.String(length=16), nullable=False),
    sa.Column('number', sa.Float(), nullable=True),
    sa.Column('category', sa.String(length=256), nullable=True),
    sa.Column('date', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'name')
    )
    op.create_table('ingested_messages',
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('message_id', sa.String(length=128), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key_id', 'message_id')
    )
    op.create_table('pending_product_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('properties', sa.JSON(), nullable=True),
    sa.Column('message_id', sa.String(length=128), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pending_product_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pending_product_events_account_id'), ['account_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('pending_product_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pending_product_events_account_id'))
    op.drop_table('pending_product_events')
    op.drop_table('ingested_messages')
    op.drop_table('traits')
    with op.batch_alter_table('used_link_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_used_link_tokens_expires_at'))
        batch_op.drop_index(batch_op.f('ix_used_link_tokens_user_id'))
    op.drop_table('used_link_tokens')
    op.drop_table('account_links')
