"""Revocation: the sessions that ended and the users (or clients) cut off, which a verifier
keeps like its JWKS — fetched in the background, never asked over the network per request.

`TokenVerifier(..., revocations=RevocationCache(url))` asks `revoked(claims)` on every
verification, a cache hit included, so that a token verified before its session ended is
refused as soon as the list knows (401 `token_revoked`). Without a list nothing is asked.

The cache polls the auth service's `/internal/revocations?since=<cursor>` every `interval`
seconds (1 s by default: a logout reaches the verifier within about a second, and a poll that
finds nothing costs the auth service one indexed query). It starts from the whole live list, so
a restart or an outage catches up in one answer, bounded by what an access token's lifetime
keeps. Entries are dropped once the last token they could affect has expired. When the list
cannot be refreshed the verifier keeps serving with what it knows and says how old that is
(`age`, a metric); with `max_staleness` it refuses every token once the list is that old, and
recovers by itself with the next good answer.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from token_verifier.background import BackgroundDocument
from token_verifier.errors import TokenRejected
from token_verifier.log import get_logger
from token_verifier.metrics import REVOCATION_AGE, REVOCATION_ENTRIES, REVOCATION_FETCHES

if TYPE_CHECKING:
    from token_verifier.verifier import VerifiedClaims

MAX_ANSWER_BYTES = 8 * 1024 * 1024
log = get_logger("token_verifier")


class RevocationList(Protocol):
    def revoked(self, claims: VerifiedClaims) -> bool:
        """Whether the token's session (`claims.sid`) or user (`claims.sub`, a cut-off against
        `claims.iat`) is revoked. Called on the request path: in memory only, no I/O."""
        ...


class RevocationCache(BackgroundDocument):
    """A RevocationList kept up to date from the auth service."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 2.0,
        interval: float = 1.0,
        max_staleness: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if interval <= 0 or (max_staleness is not None and max_staleness <= interval):
            raise ValueError("interval > 0, and max_staleness (when set) above it")
        super().__init__(client, timeout)
        self._url = url
        self._interval = interval
        self._max_staleness = max_staleness
        self._clock = clock
        self._wall = wall
        self._sessions: dict[str, float] = {}  # sid → until
        self._subjects: dict[str, tuple[float, float]] = {}  # sub → (before, until)
        self._cursor = "0"
        self._updated_at: float | None = None

    @property
    def age(self) -> float:
        """Seconds since the list was last brought up to date (infinite before the first)."""
        return math.inf if self._updated_at is None else self._clock() - self._updated_at

    @property
    def stale(self) -> bool:
        """Older than two polls and a request's timeout: something is wrong."""
        return self.age > 2 * self._interval + 2.0

    def __len__(self) -> int:
        return len(self._sessions) + len(self._subjects)

    def revoked(self, claims: VerifiedClaims) -> bool:
        if self._max_staleness is not None and self.age > self._max_staleness:
            raise TokenRejected(
                "token_revoked", "revocations cannot be checked now (the list is out of date)"
            )
        now = self._wall()
        if claims.sid:
            until = self._sessions.get(claims.sid)
            if until is not None and until > now:
                return True
        cut = self._subjects.get(claims.sub)
        return cut is not None and cut[1] > now and claims.iat < cut[0]

    async def refresh(self) -> bool:
        """One poll; False (and the old list kept) when the auth service did not answer."""
        try:
            response = await self._client.get(self._url, params={"since": self._cursor})
            if response.status_code != 200 or len(response.content) > MAX_ANSWER_BYTES:
                raise ValueError(f"answered {response.status_code}")
            document = response.json()
            items, following = document["items"], document["next"]
            if not isinstance(items, list) or not isinstance(following, str):
                raise ValueError("not a revocation list")
            for item in items:
                self._take(item)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
            REVOCATION_FETCHES.labels("failed").inc()
            REVOCATION_AGE.set(min(self.age, 1e9))
            log.warning("revocation_fetch_failed", error=type(error).__name__, age=self.age)
            return False
        self._cursor = following[:64]
        self._updated_at = self._clock()
        self._forget_expired()
        REVOCATION_FETCHES.labels("ok").inc()
        REVOCATION_AGE.set(0.0)
        REVOCATION_ENTRIES.set(len(self))
        return True

    def _take(self, item: Any) -> None:
        until = float(item["until"])
        if item["type"] == "session":
            sid = str(item["sid"])
            self._sessions[sid] = max(until, self._sessions.get(sid, 0.0))
        elif item["type"] == "subject":
            sub, before = str(item["sub"]), float(item["before"])
            old_before, old_until = self._subjects.get(sub, (0.0, 0.0))
            self._subjects[sub] = (max(before, old_before), max(until, old_until))

    def _forget_expired(self) -> None:
        now = self._wall()
        self._sessions = {sid: until for sid, until in self._sessions.items() if until > now}
        self._subjects = {sub: cut for sub, cut in self._subjects.items() if cut[1] > now}

    async def _first_fetch(self) -> None:
        """The whole live list (a failure is logged: `age` says so)."""
        await self.refresh()

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.refresh()
