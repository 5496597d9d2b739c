"""Writing events with the change they describe, and serving them by cursor.

The cursor is the last id a consumer handled. Ids are handed out in insert order but a
PostgreSQL transaction may commit after a later one; so an event is served only once it is
SETTLE_S old, by which time every transaction that took an earlier id has committed or
failed (an insert here is the last statement of a short transaction). SQLite commits its
write transactions one after another, so there the order is exact anyway."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import Counter
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.events.models import AccountEvent

SETTLE_S = 2.0
RETENTION_S = 30 * 86_400
MAX_PAGE = 500
EVENTS = Counter("auth_account_events_total", "Account events written", ["type"])


class Outbox:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._now = now

    def add(
        self, db: AsyncSession, type_: str, *, subject: str, data: Mapping[str, Any] | None = None
    ) -> None:
        """In the caller's transaction: the event exists if and only if the change does."""
        db.add(
            AccountEvent(
                type=type_,
                subject=subject,
                at=datetime.datetime.fromtimestamp(self._now(), tz=datetime.UTC),
                data=dict(data or {}),
            )
        )
        EVENTS.labels(type_).inc()

    async def page(self, *, after: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        settled = datetime.datetime.fromtimestamp(self._now() - SETTLE_S, tz=datetime.UTC)
        query = (
            select(AccountEvent)
            .where(AccountEvent.id > after, AccountEvent.at <= settled)
            .order_by(AccountEvent.id)
            .limit(min(limit, MAX_PAGE))
        )
        async with self._sessions() as db:
            events = list((await db.execute(query)).scalars())
        items = [
            {
                "id": str(event.id),
                "type": event.type,
                "subject": event.subject,
                "at": event.at.isoformat(),
                "data": event.data,
            }
            for event in events
        ]
        return items, (events[-1].id if events else after)

    async def purge_expired(self, *, now: float) -> int:
        """Events are kept 30 days: a consumer away longer starts again from its own state."""
        cutoff = datetime.datetime.fromtimestamp(now - RETENTION_S, tz=datetime.UTC)
        async with self._sessions.begin() as db:
            result = await db.execute(delete(AccountEvent).where(AccountEvent.at < cutoff))
        return int(getattr(result, "rowcount", 0))
