"""Verification keys and where they come from."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Protocol

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

# What the platform signs with. HMAC and `none` are never accepted, whatever a JWKS says.
ALGORITHMS: dict[str, tuple[str, str | None]] = {
    # alg: (kty, crv)
    "ES256": ("EC", "P-256"),
    "Ed25519": ("OKP", "Ed25519"),
    "EdDSA": ("OKP", "Ed25519"),
    "RS256": ("RSA", None),
    "PS256": ("RSA", None),
}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
Key = ECKey | OKPKey | RSAKey


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    alg: str
    key: Key


class KeySource(Protocol):
    """Where a verifier gets public keys. `generation` changes whenever a key is withdrawn, so
    the verifier's cache of verified tokens can drop what those keys had vouched for."""

    @property
    def generation(self) -> int: ...

    async def key_for(self, kid: str) -> VerificationKey | None: ...


def import_jwks(document: Any) -> dict[str, VerificationKey]:
    """The usable signing keys of a JWKS document, by kid. A key this verifier does not
    understand (other kty/alg, no kid, private members, `use` other than sig) is skipped."""
    keys: dict[str, VerificationKey] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("not a JWKS document")
    for entry in entries:
        key = _import_one(entry)
        if key is not None and key.kid not in keys:
            keys[key.kid] = key
    return keys


def _import_one(entry: Any) -> VerificationKey | None:
    if not isinstance(entry, dict):
        return None
    kid, alg, kty = entry.get("kid"), entry.get("alg"), entry.get("kty")
    if not isinstance(kid, str) or not kid or len(kid) > 128 or alg not in ALGORITHMS:
        return None
    if entry.get("use", "sig") != "sig" or _PRIVATE_MEMBERS & entry.keys():
        return None
    expected_kty, expected_crv = ALGORITHMS[alg]
    if kty != expected_kty or (expected_crv and entry.get("crv") != expected_crv):
        return None
    key: Key
    try:
        if expected_kty == "EC":
            key = ECKey.import_key(entry)
        elif expected_kty == "OKP":
            key = OKPKey.import_key(entry)
        else:
            with warnings.catch_warnings():  # a short key is refused just below
                warnings.simplefilter("ignore")
                key = RSAKey.import_key(entry)
            if key.raw_value.key_size < 2048:
                return None
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    return VerificationKey(kid=kid, alg=alg, key=key)


class StaticKeys:
    """A fixed key set (tests, or a service that is handed its keys)."""

    def __init__(self, document: Any) -> None:
        self._keys = import_jwks(document)
        self.generation = 0

    async def key_for(self, kid: str) -> VerificationKey | None:
        return self._keys.get(kid)
