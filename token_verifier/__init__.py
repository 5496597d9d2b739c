"""Stateless verification of the platform's access tokens, for any internal service.

    verifier = TokenVerifier(JwksCache(jwks_url), issuer=..., audience="todo-api")
    claims = await verifier.verify(token)        # VerifiedClaims, or raises TokenRejected
    require_scope(claims, "tasks:read")          # or raises InsufficientScope (403)

`token_verifier.litestar` protects a Litestar app with it. Nothing here imports the auth
server (no argon2, no SQLAlchemy): only joserfc, httpx and prometheus-client.
"""

from token_verifier.errors import InsufficientScope, TokenRejected
from token_verifier.jwks import JwksCache
from token_verifier.keys import KeySource, VerificationKey, import_jwks
from token_verifier.verifier import ANY_AUDIENCE, TokenVerifier, VerifiedClaims, require_scope

__all__ = [
    "ANY_AUDIENCE",
    "InsufficientScope",
    "JwksCache",
    "KeySource",
    "TokenRejected",
    "TokenVerifier",
    "VerificationKey",
    "VerifiedClaims",
    "import_jwks",
    "require_scope",
]
