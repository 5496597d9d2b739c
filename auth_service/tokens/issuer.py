"""Access tokens: RFC 9068 JWTs signed with the key ring's active key."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from joserfc import jwt
from prometheus_client import Counter

from auth_service.keys.ring import KeyRing

TOKENS_ISSUED = Counter("auth_access_tokens_issued_total", "Access tokens signed", ["alg"])


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int


class AccessTokenIssuer:
    def __init__(
        self,
        ring: KeyRing,
        *,
        issuer: str,
        audience: tuple[str, ...],
        ttl: int,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._ring = ring
        self._issuer = issuer
        self._audience: str | list[str] = audience[0] if len(audience) == 1 else list(audience)
        self._ttl = ttl
        self._now = now

    async def issue(self, *, user_id: str, session_id: str) -> AccessToken:
        active = (await self._ring.snapshot()).active
        issued_at = int(self._now())
        claims = {
            "iss": self._issuer,
            "sub": user_id,
            "aud": self._audience,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + self._ttl,
            "jti": uuid.uuid4().hex,
            "sid": session_id,
        }
        header = {"alg": active.alg, "kid": active.kid, "typ": "at+jwt"}
        token = jwt.encode(header, claims, active.key, algorithms=[active.alg])
        TOKENS_ISSUED.labels(active.alg).inc()
        return AccessToken(token=token, expires_in=self._ttl)
