"""The account-events consumer: polls the auth service's feed with this service's own client
token (`events:read`), deletes a deleted account's tasks, and keeps its cursor in this
service's database.

At least once, idempotently: the tasks of a page's deleted accounts and the cursor past that
page change in one transaction, so a crash between them replays the page (deleting nothing
more); replicas may poll the same page, and the cursor only moves forward.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from todo_service.accounts.models import EventCursor
from todo_service.tasks.models import Task

FEED = "auth-accounts"
PAGE = 100
log = structlog.get_logger("accounts")
EVENTS = Counter("todo_account_events_total", "Account events handled by type", ["type"])
POLLS = Counter("todo_account_event_polls_total", "Polls of the account-events feed", ["result"])
BEHIND = Gauge("todo_account_events_age_seconds", "Seconds since the feed was last read")


class AccountEventConsumer:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        events_url: str,
        auth: httpx.Auth,
        *,
        interval: float = 2.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._url = events_url
        self._http = client or httpx.AsyncClient(auth=auth, timeout=httpx.Timeout(5.0))
        self._interval = interval
        self._clock = clock
        self._read_at: float | None = None

    @property
    def age(self) -> float:
        return math.inf if self._read_at is None else self._clock() - self._read_at

    async def _cursor(self) -> int:
        async with self._sessions() as db:
            position = (
                await db.execute(select(EventCursor.position).where(EventCursor.feed == FEED))
            ).scalar_one_or_none()
        return int(position or 0)

    async def poll_once(self) -> int:
        """One page of events handled; how many. Raises when the feed cannot be read."""
        after = await self._cursor()
        response = await self._http.get(self._url, params={"after": str(after), "limit": PAGE})
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        events, following = document["events"], int(document["next"])
        self._read_at = self._clock()
        if not events:
            return 0
        deleted = [
            uuid.UUID(event["subject"]) for event in events if event["type"] == "user.deleted"
        ]
        async with self._sessions.begin() as db:
            if deleted:
                await db.execute(delete(Task).where(Task.owner_id.in_(deleted)))
            await self._advance(db, following)
        for event in events:
            EVENTS.labels(event["type"]).inc()
        if deleted:
            log.info("account_data_deleted", accounts=len(deleted))
        return len(events)

    @staticmethod
    async def _advance(db: AsyncSession, position: int) -> None:
        """Forward only (the migration made the row): a replica that read an older page
        cannot move it back."""
        await db.execute(
            update(EventCursor)
            .where(EventCursor.feed == FEED, EventCursor.position < position)
            .values(position=position)
        )

    async def run_forever(self) -> None:
        while True:
            try:
                while await self.poll_once() >= PAGE:
                    pass  # catching up: the next page at once
                POLLS.labels("ok").inc()
            except Exception as error:  # the feed or the database is away: next time
                POLLS.labels("failed").inc()
                log.warning("account_events_poll_failed", error=type(error).__name__)
            BEHIND.set(min(self.age, 1e9))
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        await self._http.aclose()
