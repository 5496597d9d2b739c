from __future__ import annotations

import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.database import Base


class SigningKey(Base):
    """One key of the ring. `state` moves next → active → retired, then the row is deleted."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(8), index=True)
    public_jwk: Mapped[str] = mapped_column(Text)
    # AES-256-GCM under AUTH_KEY_ENCRYPTION_KEY: base64url(nonce || ciphertext), kid as AAD.
    private_key_encrypted: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    activated_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    retired_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    remove_after: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class KeyRingLock(Base):
    """A single row that every ring change updates first: replicas take turns through it."""

    __tablename__ = "key_ring_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
