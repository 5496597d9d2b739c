from __future__ import annotations

import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.database import Base


class AuditEvent(Base):
    """One event. `id` is a UUIDv7, so ids sort by time and serve as the page cursor."""

    __tablename__ = "audit_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    type: Mapped[str] = mapped_column(String(64))
    # Who acted (a user or client id, "cli", or none for an anonymous request) and on whom.
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ip: Mapped[str] = mapped_column(String(45))
    user_agent: Mapped[str] = mapped_column(String(256))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
