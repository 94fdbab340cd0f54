"""dashboard overview: the events' time index also covers the user, so the overview's window scans read only the index

Revision ID: 0006_dash
Revises: 0005
Create Date: 2026-12-02 03:45:00
"""

from __future__ import annotations

from alembic import op

revision = '0006_dash'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # (ts, user_id) serves every query (ts) served, so it replaces it: no extra index to write.
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_ts_user', ['ts', 'user_id'], unique=False)
        batch_op.drop_index('ix_events_ts')


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_ts', ['ts'], unique=False)
        batch_op.drop_index('ix_events_ts_user')
