"""drop membership_staging: a distributed run's executors now write segment_memberships directly

Revision ID: 0012_no_staging
Revises: 0011_staging
Create Date: 2026-12-02 16:00:00

The staging table made completion copy every membership in one statement (~21 µs per user on
PostgreSQL, ~35 minutes at 100M users). The executors now write `segment_memberships` rows
with their segment ids under the running run, which no reader sees until it is current.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_no_staging"
down_revision = "0011_staging"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("membership_staging")


def downgrade() -> None:
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
