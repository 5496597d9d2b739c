"""Client authentication at the token, introspection and revocation endpoints: who is
calling, from a Basic header (`client_secret_basic`) or a signed assertion
(`private_key_jwt`), or nobody (the first-party public client naming itself).

Each request reads the client afresh (one hot read), so a disabled or deleted client's very
next request fails, on every replica.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import Counter
from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from auth_service.clients import assertions
from auth_service.clients.keys import ClientKey, InvalidJwks, RemoteClientKeys, parse_jwks
from auth_service.clients.models import Client, ClientSecret
from auth_service.clients.registry import CLIENT_SECRET_BASIC, PRIVATE_KEY_JWT
from auth_service.clients.replay import ReplayGuard
from auth_service.clients.secrets import MAX_SECRET_LENGTH, SecretHasher
from kit.database import HotRead, json_column

log = structlog.get_logger("clients")
CLIENT_AUTHENTICATIONS = Counter(
    "auth_client_authentications_total",
    "Client authentications by method and result",
    ["method", "result"],
)
MAX_CLIENT_ID_LENGTH = 63

# The client and its live secrets in one statement: a row per secret (or one with no digest).
_CLIENT = HotRead(
    select(
        Client.id,
        Client.scopes,
        Client.audiences,
        Client.jwks,
        Client.jwks_uri,
        Client.disabled,
        ClientSecret.digest,
    )
    .outerjoin(
        ClientSecret,
        and_(
            ClientSecret.client_id == Client.id,
            or_(ClientSecret.expires_at.is_(None), ClientSecret.expires_at > bindparam("now")),
        ),
    )
    .where(Client.id == bindparam("client_id"))
)


@functools.lru_cache(maxsize=256)
def _inline_keys(jwks: str) -> tuple[ClientKey, ...]:
    """Parsed once per registered JWKS text, not on every request."""
    return tuple(parse_jwks(json.loads(jwks)))


class InvalidClient(Exception):
    """401 `invalid_client` (RFC 6749 §5.2). `basic` says the client tried HTTP Basic, so the
    answer carries a Basic challenge."""

    def __init__(self, description: str, *, basic: bool = False) -> None:
        super().__init__(description)
        self.description = description
        self.basic = basic


class MalformedClientAuthentication(Exception):
    """400 `invalid_request`: more than one way to authenticate, or a malformed one."""


@dataclass(frozen=True)
class AuthenticatedClient:
    id: str
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]
    method: str


def _json_list(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in json_column(value))


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: Basic base64(urlencode(id) ":" urlencode(secret))."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidClient("malformed Basic credentials", basic=True) from None
    user, colon, password = decoded.partition(":")
    if not colon:
        raise InvalidClient("malformed Basic credentials", basic=True)
    return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)


class ClientAuthenticator:
    def __init__(
        self,
        engine: AsyncEngine,
        hasher: SecretHasher,
        remote_keys: RemoteClientKeys,
        replay: ReplayGuard,
        *,
        assertion_audiences: frozenset[str],
        now: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._hasher = hasher
        self._remote_keys = remote_keys
        self._replay = replay
        self._audiences = assertion_audiences
        self._now = now

    async def authenticate(
        self, *, authorization: str | None, form: Mapping[str, str]
    ) -> AuthenticatedClient | None:
        """The calling client, or None when it presented no credentials (a public client).
        Raises InvalidClient or MalformedClientAuthentication."""
        basic = basic_credentials(authorization)
        assertion_type = form.get("client_assertion_type")
        assertion = form.get("client_assertion")
        if "client_secret" in form:
            raise InvalidClient("client_secret_post is not supported; use HTTP Basic")
        if basic is not None and (assertion_type or assertion):
            raise MalformedClientAuthentication("more than one client authentication method")
        if basic is not None:
            return await self._by_secret(*basic, claimed=form.get("client_id"))
        if assertion_type or assertion:
            return await self._by_assertion(assertion_type, assertion, form.get("client_id"))
        return None

    async def is_active(self, client_id: str) -> bool:
        """The client exists and is not disabled (introspection of its tokens)."""
        if not 0 < len(client_id) <= MAX_CLIENT_ID_LENGTH:
            return False
        rows = await _CLIENT.all(self._engine, client_id=client_id, now=self._now())
        return bool(rows) and not rows[0][5]

    async def _client(self, client_id: str, method: str) -> tuple[tuple[Any, ...], list[str]]:
        """The client's row and the digests of its live secrets."""
        rows: Sequence[Sequence[Any]] = []
        if 0 < len(client_id) <= MAX_CLIENT_ID_LENGTH:
            rows = await _CLIENT.all(self._engine, client_id=client_id, now=self._now())
        if not rows or rows[0][5]:
            CLIENT_AUTHENTICATIONS.labels(method, "disabled" if rows else "unknown").inc()
            raise InvalidClient("client authentication failed", basic=method == CLIENT_SECRET_BASIC)
        return tuple(rows[0][:6]), [str(row[6]) for row in rows if row[6] is not None]

    async def _by_secret(
        self, client_id: str, secret: str, *, claimed: str | None
    ) -> AuthenticatedClient:
        if claimed is not None and claimed != client_id:
            raise InvalidClient("client_id does not match the credentials", basic=True)
        row, digests = await self._client(client_id, CLIENT_SECRET_BASIC)
        if (
            not secret
            or len(secret) > MAX_SECRET_LENGTH
            or not self._hasher.matches(secret, digests)
        ):
            CLIENT_AUTHENTICATIONS.labels(CLIENT_SECRET_BASIC, "refused").inc()
            raise InvalidClient("client authentication failed", basic=True)
        CLIENT_AUTHENTICATIONS.labels(CLIENT_SECRET_BASIC, "ok").inc()
        return AuthenticatedClient(
            row[0], _json_list(row[1]), _json_list(row[2]), CLIENT_SECRET_BASIC
        )

    async def _by_assertion(
        self, assertion_type: str | None, token: str | None, claimed: str | None
    ) -> AuthenticatedClient:
        if assertion_type != assertions.ASSERTION_TYPE or not token:
            # An unsupported method, or half of one: RFC 6749 §5.2's invalid_client.
            raise InvalidClient(
                f"client_assertion_type {assertions.ASSERTION_TYPE} with a client_assertion"
            )
        try:
            unverified = assertions.read(token)
            client_id = unverified.client_id
            if claimed is not None and claimed != client_id:
                raise assertions.AssertionRefused("client_id does not match the assertion")
            row, _ = await self._client(client_id, PRIVATE_KEY_JWT)
            keys = await self._keys(row, want_kid=unverified.kid)
            now = self._now()
            jti, until = assertions.verify(unverified, keys, audiences=self._audiences, now=now)
            if not await self._replay.first_use(client_id, jti, until=until, now=now):
                raise assertions.AssertionRefused("assertion was used before (jti replayed)")
        except assertions.AssertionRefused as refused:
            CLIENT_AUTHENTICATIONS.labels(PRIVATE_KEY_JWT, "refused").inc()
            log.info("client_assertion_refused", reason=str(refused))
            raise InvalidClient(str(refused)) from None
        CLIENT_AUTHENTICATIONS.labels(PRIVATE_KEY_JWT, "ok").inc()
        return AuthenticatedClient(row[0], _json_list(row[1]), _json_list(row[2]), PRIVATE_KEY_JWT)

    async def _keys(self, row: tuple[Any, ...], *, want_kid: str | None) -> list[ClientKey]:
        jwks, jwks_uri = row[3], row[4]
        try:
            if jwks:
                return list(_inline_keys(str(jwks)))
            if jwks_uri:
                return await self._remote_keys.keys(jwks_uri, want_kid=want_kid)
        except InvalidJwks as error:
            raise assertions.AssertionRefused(f"client keys unusable: {error}") from None
        raise assertions.AssertionRefused("client has no keys registered for private_key_jwt")
