"""Where this service is in the auth service's account-events feed.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    cursors = op.create_table(
        "event_cursors",
        sa.Column("feed", sa.String(length=32), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("feed", name="pk_event_cursors"),
    )
    # The auth service's account events, from the start (replicas only ever move it forward).
    op.bulk_insert(cursors, [{"feed": "auth-accounts", "position": 0}])


def downgrade() -> None:
    op.drop_table("event_cursors")
