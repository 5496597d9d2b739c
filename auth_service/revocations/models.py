from __future__ import annotations

from sqlalchemy import BigInteger, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.database import Base

SESSION = "session"
SUBJECT = "subject"


class Revocation(Base):
    """One entry: a session (`value` = sid) whose tokens are refused, or a subject (`value` =
    user or client id) whose tokens issued before `before` are refused."""

    __tablename__ = "revocations"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[str] = mapped_column(String(64))
    before: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
