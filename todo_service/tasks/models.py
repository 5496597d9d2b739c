from __future__ import annotations

import uuid

from advanced_alchemy.mixins import AuditColumns, UUIDv7PrimaryKey
from advanced_alchemy.types import GUID
from sqlalchemy import Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from todo_service.database import Base


class Task(UUIDv7PrimaryKey, AuditColumns, Base):
    __tablename__ = "tasks"
    # The owner's listing, newest first, optionally by status: one index serves all three.
    __table_args__ = (Index("ix_tasks_owner_listing", "owner_id", "completed", "created_at"),)

    owner_id: Mapped[uuid.UUID] = mapped_column(GUID(length=16), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
