"""Session rules: signing in, refresh rotation, logout, listing and ending sessions."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from auth_service.sessions.store import IssuedRefresh, RefreshSessionStore
from auth_service.tokens.issuer import AccessToken, AccessTokenIssuer

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
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._issuer = issuer
        self._email_of = email_of
        self._now = now

    async def start(self, *, user_id: str, email: str, client: ClientInfo) -> SignedIn:
        """A new session for a user who just proved who they are (login, register)."""
        refresh = await self._store.create(
            user_id=user_id, user_agent=client.user_agent, ip=client.ip, now=self._now()
        )
        access = await self._issuer.issue(user_id=user_id, session_id=refresh.session.id)
        return SignedIn(access=access, refresh=refresh, email=email)
