"""Client-assertion replay protection shared by every replica: an assertion's `jti` is
accepted once, and remembered for as long as the assertion could still be presented."""

from __future__ import annotations

import hashlib
import math
from typing import Protocol

import redis.asyncio as redis
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.clients.models import UsedAssertion
from kit.redis_options import redis_options


def _key(client_id: str, jti: str) -> str:
    return hashlib.sha256(f"{client_id}\0{jti}".encode("utf-8", "surrogatepass")).hexdigest()


class ReplayGuard(Protocol):
    async def first_use(self, client_id: str, jti: str, *, until: float, now: float) -> bool:
        """True the first time this client presents this `jti`; False ever after (until
        `until`, past which the assertion is refused for its age anyway)."""
        ...

    async def close(self) -> None: ...


class RedisReplayGuard:
    def __init__(self, url: str, *, prefix: str) -> None:
        self._redis: redis.Redis = redis.Redis.from_url(url, **redis_options(timeout_s=2))
        self._prefix = prefix

    async def first_use(self, client_id: str, jti: str, *, until: float, now: float) -> bool:
        ttl = max(1, math.ceil(until - now))
        stored = await self._redis.set(f"{self._prefix}{_key(client_id, jti)}", 1, nx=True, ex=ttl)
        return bool(stored)

    async def close(self) -> None:
        await self._redis.aclose()


class SqlReplayGuard:
    """A primary key does the work: the second insert of a `jti` fails, on any replica."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def first_use(self, client_id: str, jti: str, *, until: float, now: float) -> bool:
        try:
            async with self._sessions.begin() as db:
                db.add(UsedAssertion(key=_key(client_id, jti), expires_at=until))
        except IntegrityError:
            return False
        return True

    async def purge_expired(self, *, now: float) -> int:
        async with self._sessions.begin() as db:
            result = await db.execute(delete(UsedAssertion).where(UsedAssertion.expires_at <= now))
        return int(getattr(result, "rowcount", 0))

    async def close(self) -> None:
        """The engine belongs to the app."""
