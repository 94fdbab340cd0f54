"""rollups: activity per (user, day), events per (hour, kind, intent), active users per day/week, last days, cohorts, watermark

Revision ID: 0007_rollup
Revises: 0006_dash
Create Date: 2026-12-02 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_rollup"
down_revision = "0006_dash"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_days",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "day"),
    )
    with op.batch_alter_table("user_days", schema=None) as batch_op:
        batch_op.create_index("ix_user_days_day_user", ["day", "user_id"], unique=False)

    op.create_table(
        "event_hours",
        sa.Column("hour", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("intent", sa.String(length=128), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("user_events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "kind", "intent"),
    )
    op.create_table(
        "cohort_counts",
        sa.Column("cohort", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("week_offset", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("cohort", "week_offset"),
    )
    op.create_table(
        "period_users",
        sa.Column("period_days", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("period_days", "bucket"),
    )
    op.create_table(
        "user_last_days",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("last_day", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    with op.batch_alter_table("user_last_days", schema=None) as batch_op:
        batch_op.create_index("ix_user_last_days_day", ["last_day"], unique=False)
    op.create_table(
        "rollup_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("rollup_state")
    op.drop_table("cohort_counts")
    with op.batch_alter_table("user_last_days", schema=None) as batch_op:
        batch_op.drop_index("ix_user_last_days_day")
    op.drop_table("user_last_days")
    op.drop_table("period_users")
    with op.batch_alter_table("user_days", schema=None) as batch_op:
        batch_op.drop_index("ix_user_days_day_user")
    op.drop_table("user_days")
    op.drop_table("event_hours")
