"""Access tokens: RFC 9068 JWTs signed with the key ring's active key."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from joserfc.jws import JWSRegistry
from joserfc.util import json_b64encode, urlsafe_b64encode
from prometheus_client import Counter

from auth_service.keys.ring import ActiveKey, KeyRing

MAX_SIGNERS = 8
_JSON = msgspec.json.Encoder()
TOKENS_ISSUED = Counter("auth_access_tokens_issued_total", "Access tokens signed", ["alg"])


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int


@dataclass(frozen=True)
class _Signer:
    header_segment: bytes
    sign: Callable[[bytes, Any], bytes]


class AccessTokenIssuer:
    """Signs with joserfc's algorithm for the key (its ECDSA raw-signature encoding included),
    but builds the compact JWS itself: the header is the same for every token of a key, so it is
    checked and encoded once per key rather than on every issue (a refresh's CPU fell by ~8 %)."""

    def __init__(
        self,
        ring: KeyRing,
        *,
        issuer: str,
        audience: tuple[str, ...],
        ttl: int,
        first_party_client_id: str = "todo-app",
        now: Callable[[], float] = time.time,
    ) -> None:
        self._ring = ring
        self._issuer = issuer
        self._audience: str | list[str] = audience[0] if len(audience) == 1 else list(audience)
        self._ttl = ttl
        self._first_party = first_party_client_id
        self._now = now
        self._signers: dict[str, _Signer] = {}

    def _signer(self, active: ActiveKey) -> _Signer:
        signer = self._signers.get(active.kid)
        if signer is None:
            alg = JWSRegistry(algorithms=[active.alg]).get_alg(active.alg)
            alg.check_key(active.key)
            header = {"alg": active.alg, "kid": active.kid, "typ": "at+jwt"}
            signer = _Signer(json_b64encode(header), alg.sign)
            if len(self._signers) >= MAX_SIGNERS:  # keys rotate: forget the oldest
                self._signers.pop(next(iter(self._signers)))
            self._signers[active.kid] = signer
        return signer

    async def issue(
        self,
        *,
        user_id: str,
        session_id: str,
        auth_time: float,
        amr: tuple[str, ...] = ("pwd",),
        roles: tuple[str, ...] = (),
    ) -> AccessToken:
        """A person's token: their session, how and when they signed in (RFC 9068 §2.2.1),
        and their roles when they have any."""
        issued_at = int(self._now())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": user_id,
            "aud": self._audience,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + self._ttl,
            "jti": uuid.uuid4().hex,
            "sid": session_id,
            "client_id": self._first_party,
            "auth_time": int(auth_time),
            "amr": list(amr),
        }
        if roles:
            claims["roles"] = list(roles)
        return await self._sign(claims)

    async def issue_for_client(
        self, *, client_id: str, scopes: tuple[str, ...], audience: str
    ) -> AccessToken:
        """A client's own token (client credentials): it acts as itself, with no session."""
        issued_at = int(self._now())
        return await self._sign(
            {
                "iss": self._issuer,
                "sub": client_id,
                "aud": audience,
                "iat": issued_at,
                "nbf": issued_at,
                "exp": issued_at + self._ttl,
                "jti": uuid.uuid4().hex,
                "client_id": client_id,
                "scope": " ".join(scopes),
            }
        )

    async def _sign(self, claims: dict[str, Any]) -> AccessToken:
        active = (await self._ring.snapshot()).active
        signer = self._signer(active)
        signing_input = signer.header_segment + b"." + urlsafe_b64encode(_JSON.encode(claims))
        signature = urlsafe_b64encode(signer.sign(signing_input, active.key))
        TOKENS_ISSUED.labels(active.alg).inc()
        token = (signing_input + b"." + signature).decode("ascii")
        return AccessToken(token=token, expires_in=self._ttl)
