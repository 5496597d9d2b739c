"""The bearer of a request to the auth service's own protected routes (/auth/me, …)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from litestar import Request
from litestar.di import NamedDependency

from auth_service.config import Settings
from auth_service.keys.ring import KeyRing
from kit.problems import ProblemError

MAX_TOKEN_BYTES = 8 * 1024
LEEWAY_S = 60


@dataclass(frozen=True)
class AccessClaims:
    sub: str
    sid: str
    exp: int
    jti: str


def _unauthorized(code: str, detail: str, *, sent: bool = True) -> ProblemError:
    challenge = 'Bearer realm="todo-api"'
    if sent:
        challenge += f', error="invalid_token", error_description="{detail}"'
    return ProblemError(401, code, detail, headers={"WWW-Authenticate": challenge})


async def bearer_claims(
    request: Request[Any, Any, Any],
    ring: NamedDependency[KeyRing],
    settings: NamedDependency[Settings],
) -> AccessClaims:
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("token_missing", "no access token", sent=False)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("token_missing", "expected a Bearer token", sent=False)
    if len(token) > MAX_TOKEN_BYTES:
        raise _unauthorized("token_invalid", "token too large")
    keys = KeySet.import_key_set({"keys": list((await ring.snapshot()).public_keys)})
    try:
        decoded = jwt.decode(token, keys, algorithms=["ES256", "Ed25519", "RS256", "PS256"])
    except (JoseError, ValueError):
        raise _unauthorized("token_invalid", "token signature or format invalid") from None
    header_fields = decoded.header
    if header_fields.get("typ") != "at+jwt":
        raise _unauthorized("token_invalid", "not an access token")
    claims = decoded.claims
    now = time.time()
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if claims.get("iss") != settings.issuer or not set(audiences) & set(settings.audience):
        raise _unauthorized("token_invalid", "token issuer or audience not accepted")
    exp, nbf = claims.get("exp"), claims.get("nbf", 0)
    if not isinstance(exp, int) or not isinstance(nbf, int):
        raise _unauthorized("token_invalid", "token time claims malformed")
    if exp + LEEWAY_S < now:
        raise _unauthorized("token_expired", "access token expired")
    if nbf - LEEWAY_S > now:
        raise _unauthorized("token_invalid", "token not yet valid")
    sub, sid = claims.get("sub"), claims.get("sid")
    if not isinstance(sub, str) or not isinstance(sid, str):
        raise _unauthorized("token_invalid", "token subject malformed")
    return AccessClaims(sub=sub, sid=sid, exp=exp, jti=str(claims.get("jti", "")))
