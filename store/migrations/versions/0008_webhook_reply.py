"""webhook reply: the Bot API call a handled update answered with in its webhook response

Revision ID: 0008_webhook_reply
Revises: 0007_rollup
Create Date: 2026-12-02 11:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_webhook_reply"
down_revision = "0007_rollup"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("processed_updates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reply", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("processed_updates", schema=None) as batch_op:
        batch_op.drop_column("reply")
