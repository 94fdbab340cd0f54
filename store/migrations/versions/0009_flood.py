"""flood_counters: flood limits shared by webhook replicas

Revision ID: 0009_flood
Revises: 0008_webhook_reply
Create Date: 2026-12-02 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_flood"
down_revision = "0008_webhook_reply"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flood_counters",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("warned", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", "bucket"),
    )
    with op.batch_alter_table("flood_counters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flood_counters_bucket"), ["bucket"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("flood_counters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flood_counters_bucket"))
    op.drop_table("flood_counters")
