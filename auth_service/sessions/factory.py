"""Which refresh-session store the settings ask for, and the SQL store's clean-up loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.config import Settings
from auth_service.sessions.redis_store import RedisRefreshSessionStore
from auth_service.sessions.sql_store import SqlRefreshSessionStore
from auth_service.sessions.store import Lifetimes, RefreshSessionStore

PURGE_INTERVAL_S = 600
log = structlog.get_logger("sessions")


def open_store(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> RefreshSessionStore:
    lifetimes = Lifetimes(
        refresh_ttl=settings.refresh_token_ttl,
        session_max_age=settings.session_max_age,
        reuse_grace=settings.refresh_reuse_grace,
    )
    if settings.redis_url is None:
        return SqlRefreshSessionStore(sessions, lifetimes)
    return RedisRefreshSessionStore(
        settings.redis_url, prefix=f"{settings.redis_prefix}sessions:", lifetimes=lifetimes
    )


class Purgeable(Protocol):
    async def purge_expired(self, *, now: float) -> int: ...


async def purge_forever(
    store: Purgeable,
    *,
    now: Callable[[], float] = time.time,
    interval: float = PURGE_INTERVAL_S,
) -> None:
    """Delete what has ended (sessions, used assertions) now and then; a failure is logged
    and retried next time."""
    while True:
        try:
            purged = await store.purge_expired(now=now())
            if purged:
                log.info("sessions_purged", count=purged)
        except Exception as error:
            log.warning("sessions_purge_failed", error=type(error).__name__)
        await asyncio.sleep(interval)
