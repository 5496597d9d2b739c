"""JwksCache: the auth service's public keys, fetched rarely and never on the request path.

- fetched at start, then refreshed in the background before the copy goes stale (the
  response's `Cache-Control: max-age`, kept within [min_refresh, max_refresh]);
- an unknown `kid` triggers at most one fetch per cooldown, and concurrent callers share it
  (single flight), so a flood of forged kids costs one request;
- when the auth service is down the last good keys are served, however old.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import httpx

from token_verifier.background import BackgroundDocument
from token_verifier.keys import VerificationKey, import_jwks
from token_verifier.log import get_logger
from token_verifier.metrics import JWKS_FETCHES, JWKS_KEYS

MAX_JWKS_BYTES = 256 * 1024
_MAX_AGE = re.compile(r"max-age=(\d+)")
log = get_logger("token_verifier")


class JwksCache(BackgroundDocument):
    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 2.0,
        min_refresh: float = 30.0,
        max_refresh: float = 3600.0,
        unknown_kid_cooldown: float = 30.0,
        retry_after_failure: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(client, timeout)
        self._url = url
        self._min_refresh = min_refresh
        self._max_refresh = max_refresh
        self._cooldown = unknown_kid_cooldown
        self._retry_after_failure = retry_after_failure
        self._clock = clock
        self._keys: dict[str, VerificationKey] = {}
        self._generation = 0
        self._fetched_at: float | None = None
        self._last_attempt = float("-inf")
        self._refresh_in = min_refresh
        self._inflight: asyncio.Task[bool] | None = None

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def ready(self) -> bool:
        """Keys are held (possibly stale): tokens can be verified."""
        return bool(self._keys)

    @property
    def age(self) -> float | None:
        return None if self._fetched_at is None else self._clock() - self._fetched_at

    async def _first_fetch(self) -> None:
        await self.refresh("start")

    async def key_for(self, kid: str) -> VerificationKey | None:
        key = self._keys.get(kid)
        if key is not None:
            return key
        if self._clock() - self._last_attempt < self._cooldown:
            return None
        await self.refresh("unknown_kid")
        return self._keys.get(kid)

    async def refresh(self, reason: str) -> bool:
        """Fetch now, sharing a fetch already under way."""
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._fetch(reason))
        return await asyncio.shield(self._inflight)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_in)
            await self.refresh("scheduled")

    async def _fetch(self, reason: str) -> bool:
        self._last_attempt = self._clock()
        try:
            response = await self._client.get(self._url, headers={"Accept": "application/json"})
            response.raise_for_status()
            if len(response.content) > MAX_JWKS_BYTES:
                raise ValueError("JWKS document too large")
            keys = import_jwks(response.json())
            if not keys:
                raise ValueError("JWKS holds no usable key")
        except (httpx.HTTPError, ValueError) as error:
            JWKS_FETCHES.labels("error", reason).inc()
            self._refresh_in = self._retry_after_failure
            log.warning(
                "jwks_fetch_failed",
                reason=reason,
                error=type(error).__name__,
                serving_stale=bool(self._keys),
            )
            return False
        if set(self._keys) - set(keys):
            self._generation += 1  # a key was withdrawn: what it vouched for is forgotten
        self._keys = keys
        self._fetched_at = self._clock()
        self._refresh_in = self._next_refresh(response.headers.get("cache-control", ""))
        JWKS_FETCHES.labels("ok", reason).inc()
        JWKS_KEYS.set(len(keys))
        return True

    def _next_refresh(self, cache_control: str) -> float:
        match = _MAX_AGE.search(cache_control)
        max_age = float(match.group(1)) if match else self._min_refresh
        # Refresh before the copy goes stale, within sane bounds.
        return min(self._max_refresh, max(self._min_refresh, 0.8 * max_age))
