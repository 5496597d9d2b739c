"""OAuth clients, their secrets, and used client-assertion ids (SQL replay guard).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("audiences", sa.JSON(), nullable=False),
        sa.Column("jwks", sa.Text(), nullable=True),
        sa.Column("jwks_uri", sa.String(length=2048), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_oauth_clients"),
    )
    op.create_table(
        "oauth_client_secrets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=63), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth_clients.id"],
            name="fk_oauth_client_secrets_client_id_oauth_clients",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_oauth_client_secrets"),
    )
    op.create_index("ix_oauth_client_secrets_client_id", "oauth_client_secrets", ["client_id"])
    op.create_table(
        "oauth_used_assertions",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_oauth_used_assertions"),
    )
    op.create_index("ix_oauth_used_assertions_expires_at", "oauth_used_assertions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_oauth_used_assertions_expires_at", table_name="oauth_used_assertions")
    op.drop_table("oauth_used_assertions")
    op.drop_index("ix_oauth_client_secrets_client_id", table_name="oauth_client_secrets")
    op.drop_table("oauth_client_secrets")
    op.drop_table("oauth_clients")
