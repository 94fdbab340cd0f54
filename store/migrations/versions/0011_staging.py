"""membership_staging: segment labels a distributed run writes from its executors before completion

Revision ID: 0011_staging
Revises: 0010_last_seen
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_staging"
down_revision = "0010_last_seen"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "membership_staging",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("membership_staging")
