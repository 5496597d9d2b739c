"""A client's public keys for `private_key_jwt`: a JWKS registered with the client, or one
fetched from its `jwks_uri` and cached (fetched again at most once per cooldown when an
assertion names a key it does not hold, so a client can roll its keys)."""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

# alg → (kty, crv): what a client may sign its assertions with. No HMAC, never `none`.
ASSERTION_ALGORITHMS: dict[str, tuple[str, str | None]] = {
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "EdDSA": ("OKP", "Ed25519"),
    "Ed25519": ("OKP", "Ed25519"),
}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MAX_JWKS_BYTES = 64 * 1024
FETCHED_KEYS_TTL_S = 300.0
REFETCH_COOLDOWN_S = 30.0

Key = ECKey | OKPKey | RSAKey


class InvalidJwks(ValueError):
    """A JWKS a client cannot be registered with (says why, never echoes key material)."""


@dataclass(frozen=True)
class ClientKey:
    kid: str | None
    alg: str | None
    key: Key

    def fits(self, alg: str) -> bool:
        kty, crv = ASSERTION_ALGORITHMS[alg]
        if self.alg is not None and self.alg != alg and {self.alg, alg} != {"EdDSA", "Ed25519"}:
            return False
        if self.key.key_type != kty:
            return False
        return crv is None or self.key.as_dict(private=False).get("crv") == crv


def parse_jwks(document: Any) -> list[ClientKey]:
    """The usable public signing keys of a JWKS document; refuses private material outright
    (whoever pasted a private key must hear it), skips keys of other kinds."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise InvalidJwks('not a JWKS document (an object with a "keys" list)')
    keys: list[ClientKey] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        if _PRIVATE_MEMBERS & entry.keys():
            raise InvalidJwks("the JWKS holds private key material; register public keys only")
        key = _import(entry)
        if key is not None:
            keys.append(key)
    if not keys:
        raise InvalidJwks(
            "the JWKS has no usable public signing key (EC P-256/P-384, RSA ≥ 2048, Ed25519)"
        )
    return keys


def _import(entry: dict[str, Any]) -> ClientKey | None:
    kid, alg, kty = entry.get("kid"), entry.get("alg"), entry.get("kty")
    if entry.get("use", "sig") != "sig":
        return None
    if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > 128):
        return None
    if alg is not None and alg not in ASSERTION_ALGORITHMS:
        return None
    try:
        key: Key
        if kty == "EC":
            key = ECKey.import_key(entry)
        elif kty == "OKP":
            key = OKPKey.import_key(entry)
        elif kty == "RSA":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                key = RSAKey.import_key(entry)
            if key.raw_value.key_size < 2048:
                return None
        else:
            return None
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    if kty == "OKP" and entry.get("crv") != "Ed25519":
        return None
    return ClientKey(kid=kid, alg=alg, key=key)


def pick_key(keys: list[ClientKey], *, kid: str | None, alg: str) -> ClientKey | None:
    """The key an assertion names (by kid), or the only key that fits its algorithm."""
    if kid is not None:
        return next((key for key in keys if key.kid == kid and key.fits(alg)), None)
    fitting = [key for key in keys if key.fits(alg)]
    return fitting[0] if len(fitting) == 1 else None


@dataclass
class _Fetched:
    keys: list[ClientKey]
    at: float


class RemoteClientKeys:
    """Keys behind clients' `jwks_uri`s, cached per URI, one fetch at a time per URI."""

    def __init__(
        self,
        *,
        timeout: float = 3.0,
        ttl: float = FETCHED_KEYS_TTL_S,
        cooldown: float = REFETCH_COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._ttl = ttl
        self._cooldown = cooldown
        self._clock = clock
        self._cache: dict[str, _Fetched] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def keys(self, uri: str, *, want_kid: str | None) -> list[ClientKey]:
        """The cached keys, fetched when missing or old, or when `want_kid` is not among
        them and the last fetch is older than the cooldown. Raises InvalidJwks when the
        document cannot be had."""
        cached = self._cache.get(uri)
        if cached is not None and not self._stale(cached, want_kid):
            return cached.keys
        lock = self._locks.setdefault(uri, asyncio.Lock())
        async with lock:
            cached = self._cache.get(uri)
            if cached is not None and not self._stale(cached, want_kid):
                return cached.keys
            try:
                fetched = await self._fetch(uri)
            except InvalidJwks:
                if cached is not None:  # keep serving what we had
                    return cached.keys
                raise
            if len(self._cache) > 1000:
                self._cache.pop(next(iter(self._cache)))
            self._cache[uri] = _Fetched(fetched, self._clock())
            return fetched

    def _stale(self, cached: _Fetched, want_kid: str | None) -> bool:
        age = self._clock() - cached.at
        if age >= self._ttl:
            return True
        missing = want_kid is not None and all(key.kid != want_kid for key in cached.keys)
        return missing and age >= self._cooldown

    async def _fetch(self, uri: str) -> list[ClientKey]:
        try:
            response = await self._http.get(uri, headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            raise InvalidJwks(f"jwks_uri unreachable ({type(error).__name__})") from None
        if response.status_code != 200 or len(response.content) > MAX_JWKS_BYTES:
            raise InvalidJwks(f"jwks_uri answered {response.status_code}")
        try:
            document = json.loads(response.content)
        except ValueError:
            raise InvalidJwks("jwks_uri did not answer JSON") from None
        return parse_jwks(document)

    async def close(self) -> None:
        await self._http.aclose()
