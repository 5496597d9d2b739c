"""The bearer of a request to the auth service's own protected routes (/auth/me, …).

The same TokenVerifier as every other service, with the key ring as its key source: the auth
service reads its public keys from its own database, not over HTTP.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from auth_service.keys.ring import KeyRing, RingSnapshot
from kit.problems import ProblemError
from token_verifier import TokenRejected, TokenVerifier, VerificationKey, VerifiedClaims
from token_verifier.keys import import_jwks
from token_verifier.litestar import bearer_token

AccessClaims = VerifiedClaims


class RingKeys:
    """A KeySource over the key ring's current snapshot."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring
        self._parsed_for: RingSnapshot | None = None
        self._keys: dict[str, VerificationKey] = {}
        self.generation = 0

    async def key_for(self, kid: str) -> VerificationKey | None:
        snapshot = await self._ring.snapshot()
        if snapshot is not self._parsed_for:
            keys = import_jwks({"keys": list(snapshot.public_keys)})
            if set(self._keys) - set(keys):
                self.generation += 1
            self._keys, self._parsed_for = keys, snapshot
        return self._keys.get(kid)


async def bearer_claims_any(
    request: Request[Any, Any, Any], verifier: TokenVerifier
) -> VerifiedClaims:
    """A person's or a client's token."""
    try:
        return await verifier.verify(bearer_token(request.headers.get("authorization")))
    except TokenRejected as rejected:
        raise ProblemError(
            401,
            rejected.code,
            rejected.detail,
            headers={"WWW-Authenticate": rejected.www_authenticate("todo-api")},
        ) from None


async def bearer_claims(
    request: Request[Any, Any, Any], verifier: NamedDependency[TokenVerifier]
) -> VerifiedClaims:
    claims = await bearer_claims_any(request, verifier)
    if claims.is_client:  # these routes are a person's own account
        raise ProblemError(403, "forbidden", "a client's token does not act for a person")
    return claims
