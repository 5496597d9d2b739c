"""The todo database's declarative base: its own metadata, advanced-alchemy column types."""

from __future__ import annotations

from advanced_alchemy.base import CommonTableAttributes, create_registry
from sqlalchemy.orm import DeclarativeBase


class Base(CommonTableAttributes, DeclarativeBase):
    __abstract__ = True
    registry = create_registry()
    metadata = registry.metadata
