"""Writing and reading the audit log.

A change in the auth database (a password, roles, a disabled flag, a client) is audited in its
own transaction (`add`). What has no transaction here — a sign-in, a failed one, a session that
ends in Redis — is handed to a background writer (`record`) that inserts in batches, so the
login path pays for a queue append, not a database write. Where a request comes from (address,
user agent) is remembered per request by `remember_origin`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import structlog
import uuid_utils
from litestar import Request
from prometheus_client import Counter
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.audit.models import AuditEvent
from kit.clients import client_info

log = structlog.get_logger("audit")
AUDIT_EVENTS = Counter("auth_audit_events_total", "Audit events by how they were written", ["path"])
QUEUE_SIZE = 10_000
BATCH = 500
MAX_PAGE = 200


@dataclass(frozen=True)
class Origin:
    ip: str = ""
    user_agent: str = ""


_NOWHERE = Origin()
_ORIGIN: ContextVar[Origin | None] = ContextVar("audit_origin", default=None)


async def remember_origin(request: Request[Any, Any, Any]) -> None:
    """A before-request hook: the address and user agent every event of this request carries."""
    user_agent, ip = client_info(request)
    _ORIGIN.set(Origin(ip=ip, user_agent=user_agent))


def _row(
    type_: str, *, subject: str | None, actor: str | None, data: Mapping[str, Any] | None
) -> dict[str, Any]:
    origin = _ORIGIN.get() or _NOWHERE
    return {
        "id": str(uuid_utils.uuid7()),
        "at": datetime.datetime.now(datetime.UTC),
        "type": type_,
        "actor": actor if actor is not None else subject,
        "subject": subject,
        "ip": origin.ip[:45],
        "user_agent": origin.user_agent[:256],
        "data": dict(data or {}),
    }


def view(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "type": event.type,
        "actor": event.actor,
        "subject": event.subject,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "data": event.data,
    }


class AuditLog:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        retention: int,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._retention = retention
        self._now = now
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)

    def add(
        self,
        db: AsyncSession,
        type_: str,
        *,
        subject: str | None,
        actor: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """In the caller's transaction: the event exists if and only if the change does."""
        db.add(AuditEvent(**_row(type_, subject=subject, actor=actor, data=data)))
        AUDIT_EVENTS.labels("transaction").inc()

    def record(
        self,
        type_: str,
        *,
        subject: str | None,
        actor: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Queued for the background writer; never waits."""
        try:
            self._queue.put_nowait(_row(type_, subject=subject, actor=actor, data=data))
            AUDIT_EVENTS.labels("queued").inc()
        except asyncio.QueueFull:
            AUDIT_EVENTS.labels("dropped").inc()
            log.error("audit_event_dropped", type=type_, reason="queue full")

    async def write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write(batch)

    async def _write(self, batch: list[dict[str, Any]]) -> None:
        for attempt in range(5):
            try:
                async with self._sessions.begin() as db:
                    await db.execute(insert(AuditEvent), batch)
                AUDIT_EVENTS.labels("written").inc(len(batch))
                return
            except Exception as error:  # the database is away: wait, try again
                log.warning("audit_write_failed", error=type(error).__name__, attempt=attempt)
                await asyncio.sleep(min(0.2 * 2**attempt, 3.0))
        AUDIT_EVENTS.labels("dropped").inc(len(batch))
        log.error("audit_events_dropped", count=len(batch), reason="database unavailable")

    async def flush(self) -> None:
        """Write whatever is queued (shutdown, and tests that read what was just recorded)."""
        batch: list[dict[str, Any]] = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if batch:
            with contextlib.suppress(Exception):
                await self._write(batch)

    async def page(
        self,
        *,
        subject: str | None = None,
        types: Sequence[str] = (),
        after: str | None = None,
        limit: int = 50,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; `after` is the last id of the previous page."""
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(min(limit, MAX_PAGE))
        if subject is not None:
            query = query.where(AuditEvent.subject == subject)
        if types:
            query = query.where(AuditEvent.type.in_(list(types)))
        if after is not None:
            query = query.where(AuditEvent.id < after)
        async with self._sessions() as db:
            events = list((await db.execute(query)).scalars())
        items = [view(event) for event in events]
        more = len(events) == min(limit, MAX_PAGE)
        return items, (events[-1].id if more and events else None)

    async def purge_expired(self, *, now: float) -> int:
        cutoff = datetime.datetime.fromtimestamp(now - self._retention, tz=datetime.UTC)
        async with self._sessions.begin() as db:
            result = await db.execute(delete(AuditEvent).where(AuditEvent.at < cutoff))
        return int(getattr(result, "rowcount", 0))
