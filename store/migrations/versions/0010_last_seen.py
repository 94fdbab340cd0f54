"""rollups: each user's last event time (user_last_events) replaces their last day (user_last_days)

The rolling DAU/WAU/MAU and the charts' current day and week are then one range count on
`last_ts` instead of today's users checked against `user_days` plus the partial days read from
the log. Backfilled here from the events already folded in (up to the rollups' watermark), so
the next refresh carries on from the same watermark: one grouped pass over the log, once.

Revision ID: 0010_last_seen
Revises: 0009_flood
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_last_seen"
down_revision = "0009_flood"
branch_labels = None
depends_on = None

_WATERMARK = "(SELECT coalesce(max(last_event_id), 0) FROM rollup_state WHERE name = 'events')"


def upgrade() -> None:
    op.create_table(
        "user_last_events",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("last_ts", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.execute(
        "INSERT INTO user_last_events (user_id, last_ts) SELECT user_id, max(ts) FROM events "
        f"WHERE user_id IS NOT NULL AND id <= {_WATERMARK} GROUP BY user_id"
    )
    with op.batch_alter_table("user_last_events", schema=None) as batch_op:
        batch_op.create_index("ix_user_last_events_ts", ["last_ts"], unique=False)
    with op.batch_alter_table("user_last_days", schema=None) as batch_op:
        batch_op.drop_index("ix_user_last_days_day")
    op.drop_table("user_last_days")


def downgrade() -> None:
    op.create_table(
        "user_last_days",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("last_day", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.execute(
        "INSERT INTO user_last_days (user_id, last_day) "
        "SELECT user_id, max(day) FROM user_days GROUP BY user_id"
    )
    with op.batch_alter_table("user_last_days", schema=None) as batch_op:
        batch_op.create_index("ix_user_last_days_day", ["last_day"], unique=False)
    with op.batch_alter_table("user_last_events", schema=None) as batch_op:
        batch_op.drop_index("ix_user_last_events_ts")
    op.drop_table("user_last_events")
