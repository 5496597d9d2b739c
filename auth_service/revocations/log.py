"""Writing the list, and reading what changed since a verifier's cursor.

The cursor is a time, not an id: ids commit out of order under concurrency, and a reader that
skipped one would never see it. A read returns every entry written since `cursor − OVERLAP`
(entries are idempotent, a reader keeps a set), and the next cursor is the time the read
began. OVERLAP covers a transaction that took its `created_at` before committing, and clocks
of auth replicas that differ a little.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.revocations.models import SESSION, SUBJECT, Revocation

OVERLAP_S = 5.0
LEEWAY_S = 60  # what verifiers allow past `exp`
MAX_ENTRIES = 10_000
REVOCATIONS = Counter("auth_revocations_total", "Revocation-list entries written", ["kind"])


@dataclass(frozen=True)
class Changes:
    items: list[dict[str, Any]]
    next: str


class RevocationLog:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        access_token_ttl: int,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        # An entry outlives every access token it could affect.
        self._keep = access_token_ttl + LEEWAY_S
        self._now = now

    async def sessions_ended(self, session_ids: Iterable[str]) -> None:
        now = self._now()
        rows = [
            {
                "kind": SESSION,
                "value": sid,
                "before": None,
                "created_at": now,
                "expires_at": now + self._keep,
            }
            for sid in session_ids
        ]
        if rows:
            await self._write(rows)
            REVOCATIONS.labels(SESSION).inc(len(rows))

    async def subject_cut_off(self, subject: str) -> None:
        """Every token of this user (or client) issued until now is refused. `iat` is whole
        seconds, so the cut-off is the next whole second: a token issued in this one is
        refused too (a sign-in in the same second as an account's disabling, say)."""
        now = self._now()
        await self._write(
            [
                {
                    "kind": SUBJECT,
                    "value": subject,
                    "before": float(math.floor(now) + 1),
                    "created_at": now,
                    "expires_at": now + self._keep,
                }
            ]
        )
        REVOCATIONS.labels(SUBJECT).inc()

    async def _write(self, rows: list[dict[str, Any]]) -> None:
        async with self._sessions.begin() as db:
            await db.execute(insert(Revocation), rows)

    async def changes(self, cursor: float) -> Changes:
        began = self._now()
        query = (
            select(
                Revocation.kind,
                Revocation.value,
                Revocation.before,
                Revocation.expires_at,
                Revocation.created_at,
            )
            .where(Revocation.created_at >= cursor - OVERLAP_S, Revocation.expires_at > began)
            .order_by(Revocation.created_at)
            .limit(MAX_ENTRIES)
        )
        async with self._sessions() as db:
            rows = (await db.execute(query)).all()
        items: list[dict[str, Any]] = []
        for kind, value, before, until, _ in rows:
            if kind == SESSION:
                items.append({"type": SESSION, "sid": value, "until": until})
            else:
                items.append({"type": SUBJECT, "sub": value, "before": before, "until": until})
        # A full page: the next read goes on from the last entry read, not from now.
        following = rows[-1][4] if len(rows) == MAX_ENTRIES else began
        return Changes(items, f"{following:.6f}")

    async def purge_expired(self, *, now: float) -> int:
        async with self._sessions.begin() as db:
            result = await db.execute(delete(Revocation).where(Revocation.expires_at <= now))
        return int(getattr(result, "rowcount", 0))
