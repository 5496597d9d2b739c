"""What the verifier's two background-kept documents (the JWKS, the revocation list) share: an
HTTP client of their own unless one is given, a first fetch before serving, a refresh loop
until closed, and the `async with` / `lifespan` forms the frameworks take."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import httpx


class BackgroundDocument:
    def __init__(self, client: httpx.AsyncClient | None, timeout: float) -> None:
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout))
        self._background: asyncio.Task[None] | None = None

    async def _first_fetch(self) -> None:
        """Before serving; a failure is logged, not raised (readiness says so)."""
        raise NotImplementedError

    async def _refresh_forever(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        await self._first_fetch()
        self._background = asyncio.create_task(self._refresh_forever())

    async def close(self) -> None:
        if self._background is not None:
            self._background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._background
        if self._own_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        """`FastAPI(lifespan=keys.lifespan)`, `Starlette(lifespan=…)`, `Litestar(lifespan=[…])`:
        the first fetch before the app serves, the background refresh until it stops."""
        async with self:
            yield
