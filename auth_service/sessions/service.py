"""Session rules: signing in, refresh rotation, logout, listing and ending sessions."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from auth_service.audit.log import AuditLog
from auth_service.revocations.log import RevocationLog
from auth_service.sessions.store import (
    REUSED,
    REVOKED,
    IssuedRefresh,
    RefreshError,
    RefreshSessionStore,
    SessionInfo,
)
from auth_service.tokens.issuer import AccessToken, AccessTokenIssuer
from kit.logs import security_event
from kit.problems import ProblemError

REFRESHES = Counter("auth_refreshes_total", "Refresh attempts by result", ["result"])

EmailLookup = Callable[[str], Awaitable[str | None]]


@dataclass(frozen=True)
class SignedIn:
    """What a token response is made of."""

    access: AccessToken
    refresh: IssuedRefresh
    email: str


@dataclass(frozen=True)
class ClientInfo:
    user_agent: str
    ip: str


class SessionService:
    def __init__(
        self,
        store: RefreshSessionStore,
        issuer: AccessTokenIssuer,
        email_of: EmailLookup,
        revocations: RevocationLog,
        audit: AuditLog,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._issuer = issuer
        self._email_of = email_of
        self._revocations = revocations
        self._audit = audit
        self._now = now

    async def start(
        self,
        *,
        user_id: str,
        email: str,
        client: ClientInfo,
        roles: Sequence[str] = (),
        amr: Sequence[str] = ("pwd",),
    ) -> SignedIn:
        """A new session for a user who just proved who they are (login, register): how they
        did and what they may do are fixed for the session's tokens."""
        claims = json.dumps({"amr": list(amr), "roles": list(roles)}, separators=(",", ":"))
        refresh = await self._store.create(
            user_id=user_id,
            user_agent=client.user_agent,
            ip=client.ip,
            now=self._now(),
            claims=claims,
        )
        return SignedIn(access=await self._access(refresh.session), refresh=refresh, email=email)

    async def _access(self, session: SessionInfo) -> AccessToken:
        claims = json.loads(session.claims)
        return await self._issuer.issue(
            user_id=session.user_id,
            session_id=session.id,
            auth_time=session.created_at,
            amr=tuple(claims.get("amr") or ("pwd",)),
            roles=tuple(claims.get("roles") or ()),
        )

    async def refresh(self, refresh_token: str) -> SignedIn:
        """Rotate a refresh token (or answer a racing client within the grace window)."""
        try:
            refresh = await self._store.rotate(refresh_token, now=self._now())
        except RefreshError as error:
            REFRESHES.labels(error.code).inc()
            if error.code == REUSED and error.session_id is not None:
                await self._revocations.sessions_ended([error.session_id])
                self._audit.record(
                    "refresh_token.reused",
                    subject=error.user_id,
                    data={"session_id": error.session_id, "action": "session_revoked"},
                )
                security_event(
                    "refresh_token_reused",
                    user_id=error.user_id,
                    session_id=error.session_id,
                    action="session_revoked",
                )
            raise ProblemError(401, error.code, error.detail) from None
        email = await self._email_of(refresh.session.user_id)
        if email is None:  # the account is gone; its sessions go with it
            await self._revocations.sessions_ended(
                await self._store.revoke_all(user_id=refresh.session.user_id, now=self._now())
            )
            REFRESHES.labels(REVOKED).inc()
            raise ProblemError(401, REVOKED, "session has ended")
        REFRESHES.labels("ok").inc()
        return SignedIn(access=await self._access(refresh.session), refresh=refresh, email=email)

    async def logout(self, refresh_token: str, *, reason: str = "logout") -> None:
        ended = await self._store.revoke_by_token(refresh_token, now=self._now())
        if ended is not None:
            await self._revocations.sessions_ended([ended.session_id])
            self._audit.record(
                "session.revoked",
                subject=ended.user_id,
                data={"session_id": ended.session_id, "reason": reason},
            )

    async def logout_all(
        self, *, user_id: str, reason: str = "logout_all", actor: str | None = None
    ) -> list[str]:
        ended = await self._store.revoke_all(user_id=user_id, now=self._now())
        await self._revocations.sessions_ended(ended)
        security_event("sessions_ended", user_id=user_id, reason=reason, count=len(ended))
        self._audit.record(
            "sessions.revoked",
            subject=user_id,
            actor=actor,
            data={"count": len(ended), "reason": reason},
        )
        return ended

    async def end_other_sessions(self, *, user_id: str, keep_session_id: str) -> int:
        ended = await self._store.revoke_all(
            user_id=user_id, now=self._now(), except_session_id=keep_session_id
        )
        await self._revocations.sessions_ended(ended)
        security_event(
            "sessions_ended", user_id=user_id, reason="password_changed", count=len(ended)
        )
        return len(ended)

    async def live_session(self, session_id: str) -> SessionInfo | None:
        return await self._store.session(session_id, now=self._now())

    async def live_session_of(self, refresh_token: str) -> SessionInfo | None:
        return await self._store.session_of(refresh_token, now=self._now())

    async def end_session_of_access_token(self, *, user_id: str, session_id: str) -> None:
        if await self._store.revoke_session(
            user_id=user_id, session_id=session_id, now=self._now()
        ):
            await self._revocations.sessions_ended([session_id])
            self._audit.record(
                "session.revoked",
                subject=user_id,
                data={"session_id": session_id, "reason": "token_revoked"},
            )

    async def list_sessions(self, *, user_id: str) -> list[SessionInfo]:
        return await self._store.list_sessions(user_id=user_id, now=self._now())

    async def end_session(self, *, user_id: str, session_id: str) -> None:
        if not await self._store.revoke_session(
            user_id=user_id, session_id=session_id, now=self._now()
        ):
            raise ProblemError(404, "not_found", "no such session")
        await self._revocations.sessions_ended([session_id])
        self._audit.record(
            "session.revoked", subject=user_id, data={"session_id": session_id, "reason": "deleted"}
        )
