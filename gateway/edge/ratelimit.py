"""Per-address rate limits on the auth routes that take credentials or tokens.

Counts live in Redis when GATEWAY_REDIS_URL is set (replicas share them), in process memory
otherwise. When Redis fails, the gateway fails OPEN for a short while: requests go through
un-counted, a warning is logged and `gateway_rate_limit_errors_total` rises. The auth service
still limits failed logins per account on its own, so an outage of the gateway's Redis does not
open the door to password guessing; refusing every login instead would turn a cache outage into
a full outage.
"""

from __future__ import annotations

import math
import time

import structlog
from limits import parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from prometheus_client import Counter

from kit.problems import ProblemError
from kit.redis_options import redis_options

LIMITED_PATHS = frozenset({"/auth/login", "/auth/register", "/auth/refresh", "/oauth/token"})
FAIL_OPEN_FOR_S = 5.0

RATE_LIMITED = Counter("gateway_rate_limited_total", "Requests refused with 429", ["path"])
RATE_LIMIT_ERRORS = Counter(
    "gateway_rate_limit_errors_total", "Rate-limit storage failures (requests let through)"
)
log = structlog.get_logger("gateway")


def limiter_storage(redis_url: str | None, prefix: str) -> Storage:
    if redis_url is None:
        return MemoryStorage()
    return RedisStorage(
        "async+" + redis_url,
        implementation="redispy",
        key_prefix=f"{prefix}limits",
        **redis_options(timeout_s=0.5),
    )


class AuthRateLimit:
    def __init__(self, storage: Storage, limit: str) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._limit = parse(limit)
        self._storage = storage
        self._open_until = 0.0

    async def check(self, method: str, path: str, address: str) -> None:
        """Raises 429 `rate_limited` when the address has used up its budget on this route."""
        if method != "POST" or path.rstrip("/") not in LIMITED_PATHS:
            return
        if time.monotonic() < self._open_until:
            return
        path = path.rstrip("/")
        key = f"{path}:{address}"
        try:
            if await self._limiter.hit(self._limit, key):
                return
            stats = await self._limiter.get_window_stats(self._limit, key)
        except Exception as error:  # any storage failure: fail open, loudly
            self._open_until = time.monotonic() + FAIL_OPEN_FOR_S
            RATE_LIMIT_ERRORS.inc()
            log.warning("rate_limit_storage_failed", error=type(error).__name__)
            return
        RATE_LIMITED.labels(path).inc()
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise ProblemError(
            429,
            "rate_limited",
            f"too many requests; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )

    async def check_storage(self) -> None:
        """Readiness: raises when the counter storage does not answer."""
        if not await self._storage.check():
            raise ConnectionError("rate-limit storage does not answer")
