"""Tables of the client registry. Times are epoch seconds where the token endpoint compares
them with its clock (secrets, used assertions), as in the session store."""

from __future__ import annotations

from advanced_alchemy.mixins import AuditColumns
from sqlalchemy import JSON, Boolean, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.database import Base


class Client(AuditColumns, Base):
    """A registered application. Its id is its `client_id` (and the `sub` of its tokens)."""

    __tablename__ = "oauth_clients"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    # The first is the default `aud` of its tokens.
    audiences: Mapped[list[str]] = mapped_column(JSON)
    # private_key_jwt: its public keys, inline (a JWKS document) or where to fetch them.
    jwks: Mapped[str | None] = mapped_column(Text, nullable=True)
    jwks_uri: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class ClientSecret(Base):
    """One secret of a client (client_secret_basic), stored as a keyed hash. During a rotation
    the old one carries an `expires_at`; the newest has none."""

    __tablename__ = "oauth_client_secrets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        String(63), ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class UsedAssertion(Base):
    """A client assertion's `jti`, remembered until the assertion expires (SQL replay guard;
    Redis holds these when configured)."""

    __tablename__ = "oauth_used_assertions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
