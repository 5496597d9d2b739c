"""The refresh-session store: one protocol, two implementations (Redis and SQL).

A session is a chain of refresh-token rotations. Tokens are opaque random strings (256 bits)
and only their SHA-256 is stored. Every state change is atomic in the store (one Lua script in
Redis, one transaction in SQL), so concurrent refreshes of one token can never produce two live
successors.

Grace window: for `grace` seconds after a rotation, presenting the token just rotated returns the
same successor. The successor is kept, for that purpose only, encrypted under a key derived from
the rotated token (AES-256-GCM, key = SHA-256("grace" || old token)) — so the store never holds a
usable refresh token, and only a holder of the rotated token can open it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol


class RefreshError(Exception):
    """A refresh that must be refused; `code` is the contract's error code."""

    def __init__(
        self, code: str, detail: str, *, session_id: str | None = None, user_id: str | None = None
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.session_id = session_id
        self.user_id = user_id


# The codes RefreshError carries.
INVALID = "refresh_token_invalid"
EXPIRED = "refresh_token_expired"
REUSED = "refresh_token_reused"
REVOKED = "session_revoked"


@dataclass(frozen=True)
class SessionInfo:
    id: str
    user_id: str
    created_at: float
    last_used_at: float
    expires_at: float
    user_agent: str
    ip: str
    # A JSON object: what every access token of the session says of how the person signed in
    # (`amr`) and what they may do (`roles`), fixed at sign-in.
    claims: str = "{}"


class EndedSession(NamedTuple):
    session_id: str
    user_id: str


@dataclass(frozen=True)
class Lifetimes:
    """How long tokens and sessions live, and the grace window for racing clients (seconds)."""

    refresh_ttl: int
    session_max_age: int
    reuse_grace: int


@dataclass(frozen=True)
class IssuedRefresh:
    """A refresh token handed to the client, with the session it belongs to."""

    session: SessionInfo
    refresh_token: str
    expires_at: float


class RefreshSessionStore(Protocol):
    async def create(
        self, *, user_id: str, user_agent: str, ip: str, now: float, claims: str = "{}"
    ) -> IssuedRefresh: ...

    async def rotate(self, refresh_token: str, *, now: float) -> IssuedRefresh:
        """Retire `refresh_token` and return its successor, or raise RefreshError."""
        ...

    async def revoke_by_token(self, refresh_token: str, *, now: float) -> EndedSession | None:
        """End the session the token belongs to (current or retired token); idempotent. The
        session it ended, if it ended one."""
        ...

    async def revoke_session(self, *, user_id: str, session_id: str, now: float) -> bool:
        """End one of the user's sessions; False when it is not the user's or not live."""
        ...

    async def revoke_all(
        self, *, user_id: str, now: float, except_session_id: str | None = None
    ) -> list[str]:
        """End every live session of the user (but one); the ids of those it ended."""
        ...

    async def list_sessions(self, *, user_id: str, now: float) -> list[SessionInfo]: ...

    async def session(self, session_id: str, *, now: float) -> SessionInfo | None:
        """The session if it is live (not ended, not expired); None otherwise."""
        ...

    async def session_of(self, refresh_token: str, *, now: float) -> SessionInfo | None:
        """The live session whose current, unexpired refresh token this is; None for a
        retired, expired or unknown token. Changes nothing (introspection)."""
        ...

    async def purge_expired(self, *, now: float) -> int:
        """Delete what has expired (the SQL store; Redis expires keys by itself)."""
        ...

    async def ping(self) -> None:
        """Raise when the store cannot be reached (readiness)."""
        ...

    async def close(self) -> None: ...
