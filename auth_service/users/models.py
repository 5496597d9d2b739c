from __future__ import annotations

from advanced_alchemy.mixins import AuditColumns, UUIDv7PrimaryKey
from sqlalchemy import JSON, Boolean, String, false
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.database import Base


class User(UUIDv7PrimaryKey, AuditColumns, Base):
    __tablename__ = "users"

    # Stored normalised (trimmed, lower-cased), so the unique index is case-insensitive.
    email: Mapped[str] = mapped_column(String(320), unique=True, index=False)
    password_hash: Mapped[str] = mapped_column(String(255))
    # "admin" is the one role the platform itself gives meaning to; tokens carry them.
    roles: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # Disabled by an administrator: no sign-in, every session ended.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
