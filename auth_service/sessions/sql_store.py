"""The refresh-session store in the service's SQL database (the embedded default).

Each operation is one transaction. On PostgreSQL the session row is locked (`FOR UPDATE`)
before its tokens are read; on SQLite every write transaction takes the database lock up front
(BEGIN IMMEDIATE, see kit.database). Either way two refreshes of one token are serialised: the
second sees the first's rotation and gets the grace answer, never a second successor.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.sessions import store
from auth_service.sessions.models import RefreshSession, RefreshToken
from auth_service.sessions.store import (
    EndedSession,
    IssuedRefresh,
    Lifetimes,
    RefreshError,
    SessionInfo,
)
from auth_service.sessions.tokens import (
    digest,
    new_refresh_token,
    open_successor,
    seal_successor,
)


def _info(row: RefreshSession) -> SessionInfo:
    return SessionInfo(
        id=row.id,
        user_id=row.user_id,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=min(row.current_expires_at, row.expires_at),
        user_agent=row.user_agent,
        ip=row.ip,
        claims=row.claims,
    )


def _live(row: RefreshSession, now: float) -> bool:
    return row.revoked_at is None and row.expires_at > now and row.current_expires_at > now


class SqlRefreshSessionStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], lifetimes: Lifetimes) -> None:
        self._sessions = sessions
        self._lifetimes = lifetimes

    async def create(
        self, *, user_id: str, user_agent: str, ip: str, now: float, claims: str = "{}"
    ) -> IssuedRefresh:
        token = new_refresh_token()
        session_expires = now + self._lifetimes.session_max_age
        token_expires = min(now + self._lifetimes.refresh_ttl, session_expires)
        row = RefreshSession(
            id=str(uuid.uuid4()),
            user_id=user_id,
            created_at=now,
            last_used_at=now,
            expires_at=session_expires,
            current_digest=digest(token),
            current_expires_at=token_expires,
            revoked_at=None,
            user_agent=user_agent,
            ip=ip,
            claims=claims,
        )
        async with self._sessions.begin() as db:
            db.add(row)
            await db.flush()
            db.add(
                RefreshToken(digest=row.current_digest, session_id=row.id, expires_at=token_expires)
            )
        return IssuedRefresh(session=_info(row), refresh_token=token, expires_at=token_expires)

    async def _locked_session(self, db: AsyncSession, session_id: str) -> RefreshSession | None:
        query = select(RefreshSession).where(RefreshSession.id == session_id).with_for_update()
        return (await db.execute(query)).scalar_one_or_none()

    async def rotate(self, refresh_token: str, *, now: float) -> IssuedRefresh:
        presented = digest(refresh_token)
        async with self._sessions.begin() as db:
            token = await db.get(RefreshToken, presented)
            if token is None:
                raise RefreshError(store.INVALID, "refresh token not recognised")
            session = await self._locked_session(db, token.session_id)
            if session is None:
                raise RefreshError(store.INVALID, "refresh token not recognised")
            await db.refresh(token)  # read again now that the session is locked
            ids = {"session_id": session.id, "user_id": session.user_id}
            if session.revoked_at is not None:
                raise RefreshError(store.REVOKED, "session has ended", **ids)
            if session.expires_at <= now:
                raise RefreshError(store.EXPIRED, "session has reached its maximum age", **ids)
            if token.retired_at is None:
                if token.expires_at <= now:
                    raise RefreshError(store.EXPIRED, "refresh token expired", **ids)
                return await self._rotate(db, session, token, refresh_token, now)
            in_grace = now - token.retired_at <= self._lifetimes.reuse_grace
            if (
                in_grace
                and token.successor_digest == session.current_digest
                and token.sealed_successor
            ):
                successor = open_successor(token.sealed_successor, rotated_token=refresh_token)
                if successor is not None:
                    return IssuedRefresh(
                        session=_info(session),
                        refresh_token=successor,
                        expires_at=session.current_expires_at,
                    )
            session.revoked_at = now
            raise_after_commit = RefreshError(store.REUSED, "refresh token was already used", **ids)
        raise raise_after_commit

    async def _rotate(
        self,
        db: AsyncSession,
        session: RefreshSession,
        token: RefreshToken,
        refresh_token: str,
        now: float,
    ) -> IssuedRefresh:
        successor = new_refresh_token()
        successor_expires = min(now + self._lifetimes.refresh_ttl, session.expires_at)
        token.retired_at = now
        token.successor_digest = digest(successor)
        token.sealed_successor = seal_successor(successor, rotated_token=refresh_token)
        db.add(
            RefreshToken(
                digest=token.successor_digest, session_id=session.id, expires_at=successor_expires
            )
        )
        session.current_digest = token.successor_digest
        session.current_expires_at = successor_expires
        session.last_used_at = now
        return IssuedRefresh(
            session=_info(session), refresh_token=successor, expires_at=successor_expires
        )

    async def revoke_by_token(self, refresh_token: str, *, now: float) -> EndedSession | None:
        async with self._sessions.begin() as db:
            token = await db.get(RefreshToken, digest(refresh_token))
            if token is None:
                return None
            ended = await db.execute(
                update(RefreshSession)
                .where(RefreshSession.id == token.session_id, RefreshSession.revoked_at.is_(None))
                .values(revoked_at=now)
                .returning(RefreshSession.id, RefreshSession.user_id)
            )
            row = ended.first()
        return EndedSession(row[0], row[1]) if row is not None else None

    async def revoke_session(self, *, user_id: str, session_id: str, now: float) -> bool:
        async with self._sessions.begin() as db:
            result = await db.execute(
                update(RefreshSession)
                .where(
                    RefreshSession.id == session_id,
                    RefreshSession.user_id == user_id,
                    RefreshSession.revoked_at.is_(None),
                    RefreshSession.expires_at > now,
                    RefreshSession.current_expires_at > now,
                )
                .values(revoked_at=now)
            )
        return bool(getattr(result, "rowcount", 0))

    async def revoke_all(
        self, *, user_id: str, now: float, except_session_id: str | None = None
    ) -> list[str]:
        query = update(RefreshSession).where(
            RefreshSession.user_id == user_id, RefreshSession.revoked_at.is_(None)
        )
        if except_session_id is not None:
            query = query.where(RefreshSession.id != except_session_id)
        async with self._sessions.begin() as db:
            result = await db.execute(query.values(revoked_at=now).returning(RefreshSession.id))
            return [str(sid) for sid in result.scalars()]

    async def list_sessions(self, *, user_id: str, now: float) -> list[SessionInfo]:
        query = (
            select(RefreshSession)
            .where(
                RefreshSession.user_id == user_id,
                RefreshSession.revoked_at.is_(None),
                RefreshSession.expires_at > now,
                RefreshSession.current_expires_at > now,
            )
            .order_by(RefreshSession.last_used_at.desc())
        )
        async with self._sessions() as db:
            return [_info(row) for row in (await db.execute(query)).scalars()]

    async def session(self, session_id: str, *, now: float) -> SessionInfo | None:
        async with self._sessions() as db:
            row = await db.get(RefreshSession, session_id)
            return _info(row) if row is not None and _live(row, now) else None

    async def session_of(self, refresh_token: str, *, now: float) -> SessionInfo | None:
        presented = digest(refresh_token)
        async with self._sessions() as db:
            token = await db.get(RefreshToken, presented)
            if token is None or token.retired_at is not None or token.expires_at <= now:
                return None
            row = await db.get(RefreshSession, token.session_id)
            if row is None or row.current_digest != presented or not _live(row, now):
                return None
            return _info(row)

    async def purge_expired(self, *, now: float) -> int:
        """Sessions past their end (maximum age, or their last token's expiry) go, with their
        tokens. Revoked sessions stay until then, so their tokens still answer `session_revoked`."""
        over = (RefreshSession.expires_at <= now) | (RefreshSession.current_expires_at <= now)
        async with self._sessions.begin() as db:
            ended = select(RefreshSession.id).where(over)
            await db.execute(delete(RefreshToken).where(RefreshToken.session_id.in_(ended)))
            result = await db.execute(delete(RefreshSession).where(over))
        return int(getattr(result, "rowcount", 0))

    async def ping(self) -> None:
        async with self._sessions() as db:
            await db.execute(text("SELECT 1"))

    async def close(self) -> None:
        """The engine belongs to the app, which disposes of it."""
