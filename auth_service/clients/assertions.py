"""`private_key_jwt` (RFC 7523 §3, OIDC Core §9): a client proves who it is with a JWT signed
by one of its registered keys. Read unverified only to learn which client claims to speak;
trusted only once its signature, audience, lifetime and single use are checked."""

from __future__ import annotations

import binascii
import json
import math
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.util import urlsafe_b64decode

from auth_service.clients.keys import ASSERTION_ALGORITHMS, ClientKey, pick_key

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_BYTES = 8 * 1024
MAX_LIFETIME_S = 3600  # what common clients send; a longer-lived assertion is refused
LEEWAY_S = 60
MAX_JTI_LENGTH = 256
REFUSED_HEADERS = ("jku", "x5u", "jwk", "x5c", "crit", "b64")


class AssertionRefused(Exception):
    """Why an assertion was not accepted (for logs and the error description)."""


@dataclass(frozen=True)
class UnverifiedAssertion:
    """What an assertion says before anything is checked: who, and with which key."""

    token: str
    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def client_id(self) -> str:
        issuer = self.claims.get("iss")
        if not isinstance(issuer, str) or not issuer or issuer != self.claims.get("sub"):
            raise AssertionRefused("iss and sub must both be the client id")
        return issuer

    @property
    def alg(self) -> str:
        alg = self.header.get("alg")
        if not isinstance(alg, str) or alg not in ASSERTION_ALGORITHMS:
            raise AssertionRefused("assertion algorithm not accepted")
        return alg

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        if kid is None:
            return None
        if not isinstance(kid, str) or not kid or len(kid) > 128:
            raise AssertionRefused("assertion kid malformed")
        return kid


def _segment(raw: str) -> Any:
    try:
        return json.loads(urlsafe_b64decode(raw.encode("ascii")).decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeError):
        raise AssertionRefused("assertion is not a well-formed JWS") from None


def read(token: str) -> UnverifiedAssertion:
    if len(token) > MAX_ASSERTION_BYTES:
        raise AssertionRefused("assertion too large")
    segments = token.split(".")
    if len(segments) != 3 or not all(segments):
        raise AssertionRefused("assertion is not a compact JWS")
    header, claims = _segment(segments[0]), _segment(segments[1])
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise AssertionRefused("assertion header or claims are not objects")
    for name in REFUSED_HEADERS:
        if name in header:
            raise AssertionRefused(f"assertion header {name} not accepted")
    return UnverifiedAssertion(token, header, claims)


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AssertionRefused(f"claim {name} malformed")
    return float(value)


def verify(
    assertion: UnverifiedAssertion,
    keys: list[ClientKey],
    *,
    audiences: frozenset[str],
    now: float,
) -> tuple[str, float]:
    """Check signature and claims; returns (jti, expiry) for the replay guard."""
    alg = assertion.alg
    key = pick_key(keys, kid=assertion.kid, alg=alg)
    if key is None:
        raise AssertionRefused("no registered key of the client verifies this assertion")
    try:
        jws.deserialize_compact(assertion.token, key.key, algorithms=[alg])
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise AssertionRefused("assertion signature invalid") from None
    claims = assertion.claims
    audience = claims.get("aud")
    presented = audience if isinstance(audience, list) else [audience]
    if not any(isinstance(item, str) and item in audiences for item in presented):
        raise AssertionRefused("assertion audience is not this server")
    exp = _number(claims, "exp")
    if exp is None:
        raise AssertionRefused("assertion has no exp")
    if exp <= now - LEEWAY_S:
        raise AssertionRefused("assertion expired")
    if exp > now + MAX_LIFETIME_S + LEEWAY_S:
        raise AssertionRefused("assertion lives too long (exp more than an hour ahead)")
    for name in ("nbf", "iat"):
        moment = _number(claims, name)
        if moment is not None and moment > now + LEEWAY_S:
            raise AssertionRefused(f"assertion {name} is in the future")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise AssertionRefused("assertion has no usable jti")
    return jti, max(exp, now) + LEEWAY_S
