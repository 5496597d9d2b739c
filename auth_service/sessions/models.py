"""Tables of the SQL refresh-session store (the embedded default; Redis holds these otherwise).

Times are epoch seconds (floats): the store compares them with the caller's clock, the same
way on SQLite and PostgreSQL, and the Redis store uses the same numbers.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.database import Base


class RefreshSession(Base):
    """A chain of refresh-token rotations that began with one sign-in."""

    __tablename__ = "refresh_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    created_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float] = mapped_column(Float)
    # Absolute end of the session (AUTH_SESSION_MAX_AGE after sign-in), rotations included.
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    current_digest: Mapped[str] = mapped_column(String(64))
    current_expires_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    user_agent: Mapped[str] = mapped_column(String(256))
    ip: Mapped[str] = mapped_column(String(45))
    claims: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")


class RefreshToken(Base):
    """Every token a session has handed out, kept (as a digest) until the session ends so that
    a retired one coming back is recognised as reuse."""

    __tablename__ = "refresh_tokens"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("refresh_sessions.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[float] = mapped_column(Float)
    retired_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    successor_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sealed_successor: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
