"""Every Redis client of the platform opens connections without looking redis-py's version up
in the installed packages' metadata (about 1 ms of event-loop CPU per connection otherwise).
Checked on real connections, with the pool grown by concurrent commands."""

from __future__ import annotations

import asyncio
import importlib.metadata
import secrets
from collections.abc import Callable

import pytest
from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter

from auth_service.sessions.redis_store import RedisRefreshSessionStore
from auth_service.sessions.store import Lifetimes
from gateway.edge.ratelimit import limiter_storage
from kit.redis_options import DRIVER
from tests.infra import RedisSpace

CONCURRENT = 16


@pytest.fixture
def version_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names asked of `importlib.metadata.version` from now on (redis-py asks it through
    the module, so this is what it sees)."""
    asked: list[str] = []
    real: Callable[[str], str] = importlib.metadata.version

    def counting(name: str) -> str:
        asked.append(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", counting)
    return asked


def test_the_driver_names_the_installed_redis_py() -> None:
    assert DRIVER.name == "redis-py"
    assert DRIVER.lib_version == importlib.metadata.version("redis")


async def test_session_store_connections_skip_the_metadata_lookup(
    redis_space: RedisSpace, version_lookups: list[str]
) -> None:
    prefix = f"{redis_space.prefix}options-{secrets.token_hex(3)}:"
    store = RedisRefreshSessionStore(
        redis_space.url,
        prefix=prefix,
        lifetimes=Lifetimes(refresh_ttl=100, session_max_age=1000, reuse_grace=10),
    )
    try:
        issued = await asyncio.gather(
            *(
                store.create(user_id="u", user_agent="t", ip="127.0.0.1", now=1_800_000_000.0)
                for _ in range(CONCURRENT)
            )
        )
        # More than one connection was opened: the pool grew, as in a burst.
        opened = store._redis.connection_pool._available_connections
        assert len(opened) > 1
    finally:
        await store.close()
    assert len({item.refresh_token for item in issued}) == CONCURRENT
    assert version_lookups == []


async def test_rate_limit_storage_connections_skip_the_metadata_lookup(
    redis_space: RedisSpace, version_lookups: list[str]
) -> None:
    storage = limiter_storage(redis_space.url, f"{redis_space.prefix}options-gw:")
    limiter = MovingWindowRateLimiter(storage)
    item = parse("1000/minute")
    key = secrets.token_hex(4)
    allowed = await asyncio.gather(*(limiter.hit(item, key) for _ in range(CONCURRENT)))
    assert all(allowed)
    assert version_lookups == []
