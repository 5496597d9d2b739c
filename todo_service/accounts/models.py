from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from todo_service.database import Base


class EventCursor(Base):
    """How far this service has handled a feed: one row per feed, shared by every replica."""

    __tablename__ = "event_cursors"

    feed: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
