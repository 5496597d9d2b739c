from __future__ import annotations

import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.database import Base


class AccountEvent(Base):
    __tablename__ = "account_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    type: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
