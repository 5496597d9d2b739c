"""TokenVerifier: every check of the contract, cheapest first, and a cache of verified tokens."""

from __future__ import annotations

import binascii
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.util import urlsafe_b64decode

from token_verifier.errors import InsufficientScope, TokenRejected
from token_verifier.keys import ALGORITHMS, KeySource
from token_verifier.metrics import VERIFICATIONS
from token_verifier.revocation import RevocationList

MAX_TOKEN_BYTES = 8 * 1024
MAX_LEEWAY_S = 60
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
# Headers that would let a token choose its own key, or demand semantics we do not implement
# (`b64`: RFC 7797's unencoded payload).
REFUSED_HEADERS = ("jku", "x5u", "jwk", "x5c", "crit", "b64")

_CACHED = VERIFICATIONS.labels("cached")
_VERIFIED = VERIFICATIONS.labels("verified")


class _AnyAudience:
    def __repr__(self) -> str:
        return "ANY_AUDIENCE"


# For an authorization server's own introspection only: every audience it issues for. A
# resource server names its own audience.
ANY_AUDIENCE = _AnyAudience()


@dataclass(frozen=True, slots=True)
class VerifiedClaims:
    """A verified access token. A person's token has a session (`sid`); a client's token (an
    internal service, OAuth client credentials) has none: its `sub` is its `client_id`."""

    sub: str
    sid: str  # "" for a client's token
    jti: str
    iss: str
    aud: tuple[str, ...]
    iat: int
    exp: int
    claims: dict[str, Any]
    client_id: str = ""
    scopes: frozenset[str] = frozenset()

    @property
    def is_client(self) -> bool:
        """A client's own token (client credentials), not a person's."""
        return not self.sid

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def require_scope(claims: VerifiedClaims, scope: str) -> None:
    """Raise InsufficientScope unless the token holds `scope`."""
    if scope not in claims.scopes:
        raise InsufficientScope(scope)


def require_scopes(claims: VerifiedClaims, scopes: Iterable[str]) -> None:
    """Raise InsufficientScope, naming every scope asked for (RFC 6750 §3.1), unless the token
    holds them all."""
    wanted = tuple(scopes)
    if not claims.scopes.issuperset(wanted):
        raise InsufficientScope(" ".join(wanted))


def _invalid(detail: str) -> TokenRejected:
    return TokenRejected("token_invalid", detail)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# One decoder for every call: json.loads with any option builds a new one each time.
_STRICT_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def strict_json(raw: bytes) -> Any:
    """RFC 8725 §3.7: UTF-8 only (no UTF-16/32 detection, no BOM), and RFC 8259 numbers only
    (no NaN or Infinity, which Python's json would otherwise accept)."""
    return _STRICT_DECODER.decode(raw.decode("utf-8"))


def _b64json(segment: str) -> Any:
    """joserfc's strict base64url (no padding, no `+/=`, no stray trailing bits), then JSON."""
    try:
        return strict_json(urlsafe_b64decode(segment.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError):
        raise _invalid("token is not a well-formed JWS") from None


def _int_claim(claims: dict[str, Any], name: str, *, required: bool) -> int | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f"claim {name} missing or malformed")
    return int(value)


class TokenVerifier:
    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str | Sequence[str] | _AnyAudience,
        leeway: int = MAX_LEEWAY_S,
        cache_size: int = 10_000,
        revocations: RevocationList | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not 0 <= leeway <= MAX_LEEWAY_S:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY_S} seconds")
        self._keys = keys
        self._issuer = issuer
        self._audience: frozenset[str] | None = (
            None
            if isinstance(audience, _AnyAudience)
            else frozenset([audience] if isinstance(audience, str) else audience)
        )
        self._leeway = leeway
        self._cache_size = cache_size
        self._cache: dict[str, tuple[VerifiedClaims, int]] = {}
        self._revocations = revocations
        self._now = now
        # One registry per algorithm, each allowing only that one, and its algorithm object
        # once first needed (joserfc warns when "EdDSA" is looked up: say so only if used).
        self._registries = {alg: jws.JWSRegistry(algorithms=[alg]) for alg in ALGORITHMS}
        self._algorithms: dict[str, Any] = {}  # joserfc's JWSAlgModel, which it does not export

    async def verify(self, token: str | None) -> VerifiedClaims:
        if not token:
            raise TokenRejected("token_missing", "no access token")
        cached = self._cache.get(token)
        if cached is not None:
            claims, generation = cached
            if generation == self._keys.generation and self._now() < claims.exp + self._leeway:
                if self._revocations is not None:
                    self._refuse_revoked(claims)
                _CACHED.inc()
                return claims
            del self._cache[token]
        try:
            claims = await self._verify(token)
        except TokenRejected as rejected:
            VERIFICATIONS.labels(rejected.code).inc()
            raise
        # A revoked token is still remembered: the list is asked again on every use, so a
        # revocation reaches cached tokens too, and a lifted one (none today) would as well.
        self._remember(token, claims)
        if self._revocations is not None:
            self._refuse_revoked(claims)
        _VERIFIED.inc()
        return claims

    def _refuse_revoked(self, claims: VerifiedClaims) -> None:
        if self._revocations is not None and self._revocations.revoked(claims):
            VERIFICATIONS.labels("token_revoked").inc()
            raise TokenRejected("token_revoked", "access token revoked")

    def _remember(self, token: str, claims: VerifiedClaims) -> None:
        if self._cache_size <= 0:
            return
        if len(self._cache) >= self._cache_size:
            # Drop the oldest entry (dicts keep insertion order); expired ones go on lookup.
            self._cache.pop(next(iter(self._cache)), None)
        self._cache[token] = (claims, self._keys.generation)

    async def _verify(self, token: str) -> VerifiedClaims:
        if len(token) > MAX_TOKEN_BYTES:
            raise _invalid("token too large")
        segments = token.split(".")
        if len(segments) != 3 or not all(segments):
            raise _invalid("token is not a compact JWS")
        header_segment, payload_segment, signature_segment = segments
        header = _b64json(header_segment)
        if not isinstance(header, dict):
            raise _invalid("token header is not an object")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            raise _invalid("signing algorithm not accepted")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise _invalid("not an access token (typ)")
        for name in REFUSED_HEADERS:
            if name in header:
                raise _invalid(f"header parameter {name} not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 128:
            raise _invalid("token has no usable key id")
        key = await self._keys.key_for(kid)
        if key is None:
            raise _invalid("token signed by an unknown key")
        if key.alg != alg:
            raise _invalid("algorithm does not match the key")
        # What joserfc's deserialize_compact does after its own parse, on the header parsed
        # above: its header rules (registered members only, their types), its key check and
        # its algorithm's verify. Parsing once instead of twice is ~20 % of a first
        # verification (README, Performance). The payload is read only once it is signed.
        registry = self._registries[alg]
        try:
            algorithm = self._algorithms.get(alg) or self._algorithms.setdefault(
                alg, registry.get_alg(alg)
            )
            registry.check_header(header)
            algorithm.check_key(key.key)
            signature = urlsafe_b64decode(signature_segment.encode("ascii"))
            signed = algorithm.verify(
                f"{header_segment}.{payload_segment}".encode("ascii"), signature, key.key
            )
        except (JoseError, ValueError, UnicodeError, TypeError):
            raise _invalid("token signature or format invalid") from None
        if not signed:
            raise _invalid("token signature or format invalid")
        claims = _b64json(payload_segment)
        if not isinstance(claims, dict):
            raise _invalid("token claims are not an object")
        return self._checked(claims)

    def _checked(self, claims: dict[str, Any]) -> VerifiedClaims:
        if claims.get("iss") != self._issuer:
            raise _invalid("token issuer not accepted")
        audience = claims.get("aud")
        audiences = tuple(audience) if isinstance(audience, list) else (audience,)
        if not all(isinstance(item, str) and item for item in audiences) or (
            self._audience is not None and not self._audience & set(audiences)
        ):
            raise _invalid("token audience not accepted")
        now = self._now()
        exp = _int_claim(claims, "exp", required=True)
        iat = _int_claim(claims, "iat", required=True)
        nbf = _int_claim(claims, "nbf", required=False)
        assert exp is not None and iat is not None
        if now >= exp + self._leeway:
            raise TokenRejected("token_expired", "access token expired")
        if nbf is not None and nbf - self._leeway > now:
            raise _invalid("token not valid yet")
        if iat - self._leeway > now:
            raise _invalid("token issued in the future")
        sub, sid, jti = claims.get("sub"), claims.get("sid"), claims.get("jti")
        client_id, scope = claims.get("client_id"), claims.get("scope", "")
        if not isinstance(sub, str) or not sub:
            raise _invalid("token subject missing")
        if client_id is not None and (not isinstance(client_id, str) or not client_id):
            raise _invalid("token client_id malformed")
        if sid is None:
            # A client's token: it acts as itself, so its subject is its client id.
            if client_id != sub:
                raise _invalid("token session missing")
        elif not isinstance(sid, str) or not sid:
            raise _invalid("token session malformed")
        if not isinstance(scope, str):
            raise _invalid("token scope malformed")
        return VerifiedClaims(
            sub=sub,
            sid=sid or "",
            jti=jti if isinstance(jti, str) else "",
            iss=self._issuer,
            aud=tuple(str(item) for item in audiences),
            iat=iat,
            exp=exp,
            claims=claims,
            client_id=client_id or "",
            scopes=frozenset(scope.split()),
        )
