"""The revocation list, users' roles and disabled flag, what a session's tokens say, the audit
log and the account-events outbox.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revocations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("before", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_revocations"),
    )
    op.create_index("ix_revocations_created_at", "revocations", ["created_at"])
    op.create_index("ix_revocations_expires_at", "revocations", ["expires_at"])
    with op.batch_alter_table("users") as users:
        users.add_column(sa.Column("roles", sa.JSON(), nullable=False, server_default="[]"))
        users.add_column(
            sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("refresh_sessions") as refresh_sessions:
        refresh_sessions.add_column(
            sa.Column("claims", sa.Text(), nullable=False, server_default="{}")
        )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(length=64), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("user_agent", sa.String(length=256), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_subject_id", "audit_events", ["subject", "id"])
    op.create_index("ix_audit_events_type_id", "audit_events", ["type", "id"])
    op.create_table(
        "account_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_account_events"),
    )
    op.create_index("ix_account_events_at", "account_events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_account_events_at", table_name="account_events")
    op.drop_table("account_events")
    op.drop_index("ix_audit_events_type_id", table_name="audit_events")
    op.drop_index("ix_audit_events_subject_id", table_name="audit_events")
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    op.drop_table("audit_events")
    with op.batch_alter_table("refresh_sessions") as refresh_sessions:
        refresh_sessions.drop_column("claims")
    with op.batch_alter_table("users") as users:
        users.drop_column("disabled")
        users.drop_column("roles")
    op.drop_index("ix_revocations_expires_at", table_name="revocations")
    op.drop_index("ix_revocations_created_at", table_name="revocations")
    op.drop_table("revocations")
