"""Stateless verification of the platform's access tokens, for any internal service.

    verifier = TokenVerifier(JwksCache(jwks_url), issuer=..., audience="todo-api")
    claims = await verifier.verify(token)        # VerifiedClaims, or raises TokenRejected
    require_scope(claims, "tasks:read")          # or raises InsufficientScope (403)

Adapters, one verification core under all of them (refusals.py: the same bodies and
challenges): `token_verifier.asgi` (any ASGI app), `token_verifier.fastapi`,
`token_verifier.starlette`, `token_verifier.litestar`. Also: `token_verifier.metadata` (RFC 9728
protected-resource metadata) and `token_verifier.client_credentials` (an httpx.Auth for calling
other services with a client-credentials token). Nothing here imports the auth server, any web
framework (outside its adapter) or any database: only joserfc and httpx, and prometheus-client
when installed.
"""

from token_verifier.errors import InsufficientScope, TokenRejected
from token_verifier.jwks import JwksCache
from token_verifier.keys import KeySource, StaticKeys, VerificationKey, import_jwks
from token_verifier.refusals import Refusal, bearer_token, refusal_for
from token_verifier.revocation import RevocationCache, RevocationList
from token_verifier.verifier import (
    ANY_AUDIENCE,
    TokenVerifier,
    VerifiedClaims,
    require_scope,
    require_scopes,
)

__version__ = "0.3.0"

__all__ = [
    "ANY_AUDIENCE",
    "InsufficientScope",
    "JwksCache",
    "KeySource",
    "Refusal",
    "RevocationCache",
    "RevocationList",
    "StaticKeys",
    "TokenRejected",
    "TokenVerifier",
    "VerificationKey",
    "VerifiedClaims",
    "bearer_token",
    "import_jwks",
    "refusal_for",
    "require_scope",
    "require_scopes",
]
