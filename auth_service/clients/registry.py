"""Managing clients (the CLI and, later, the admin API): create, rotate a secret, disable,
enable, delete, show. Rules on names and scopes live here; the token endpoint's hot reads
live in `authentication`."""

from __future__ import annotations

import datetime
import json
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.audit.log import AuditLog
from auth_service.clients.keys import InvalidJwks, parse_jwks
from auth_service.clients.models import Client, ClientSecret
from auth_service.clients.secrets import SecretHasher, new_secret
from auth_service.revocations.log import RevocationLog
from kit.settings import ConfigError, check_url

CLIENT_ID = re.compile(r"[a-z0-9-]{3,63}")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")
AUDIENCE = re.compile(r"[\x21-\x7e]{1,256}")
DEFAULT_OVERLAP_S = 86_400
CLIENT_SECRET_BASIC = "client_secret_basic"  # noqa: S105 - a method name
PRIVATE_KEY_JWT = "private_key_jwt"


class ClientRefused(Exception):
    """A management request that cannot be done; `bad_argument` marks the caller's mistake
    (exit status 2 in the CLI, 422 in an API) as against a state conflict (1, 404/409)."""

    def __init__(self, message: str, *, bad_argument: bool = False, missing: bool = False):
        super().__init__(message)
        self.bad_argument = bad_argument
        self.missing = missing


def check_client_id(client_id: str, *, first_party: str) -> str:
    if not CLIENT_ID.fullmatch(client_id):
        raise ClientRefused(
            "a client id is 3-63 lower-case letters, digits and '-'", bad_argument=True
        )
    try:
        uuid.UUID(client_id)
    except ValueError:
        pass
    else:  # a user's id is a UUID: a client's token must never share a user's subject
        raise ClientRefused("a client id must not be shaped like a UUID", bad_argument=True)
    if client_id == first_party:
        raise ClientRefused(f"{client_id} is the first-party client", bad_argument=True)
    return client_id


def check_scopes(scopes: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(scopes))
    if not unique or not all(SCOPE_TOKEN.fullmatch(scope) for scope in unique):
        raise ClientRefused(
            "scopes are space-separated printable tokens without quotes or backslashes",
            bad_argument=True,
        )
    return unique


def check_audiences(audiences: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(audiences))
    if not unique or not all(AUDIENCE.fullmatch(audience) for audience in unique):
        raise ClientRefused("an audience is printable text without spaces", bad_argument=True)
    return unique


@dataclass(frozen=True)
class SecretView:
    id: str
    created_at: float
    expires_at: float | None


@dataclass(frozen=True)
class ClientView:
    client_id: str
    name: str
    scopes: list[str]
    audiences: list[str]
    auth_methods: list[str]
    jwks_uri: str | None
    disabled: bool
    created_at: datetime.datetime
    updated_at: datetime.datetime
    secrets: list[SecretView]

    def as_json(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "name": self.name,
            "scopes": self.scopes,
            "audiences": self.audiences,
            "auth_methods": self.auth_methods,
            "jwks_uri": self.jwks_uri,
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "secrets": [
                {"id": secret.id, "created_at": secret.created_at, "expires_at": secret.expires_at}
                for secret in self.secrets
            ],
        }


def _view(client: Client, secrets: list[ClientSecret], now: float) -> ClientView:
    live = [secret for secret in secrets if secret.expires_at is None or secret.expires_at > now]
    methods = ([CLIENT_SECRET_BASIC] if live else []) + (
        [PRIVATE_KEY_JWT] if client.jwks or client.jwks_uri else []
    )
    return ClientView(
        client_id=client.id,
        name=client.name,
        scopes=list(client.scopes),
        audiences=list(client.audiences),
        auth_methods=methods,
        jwks_uri=client.jwks_uri,
        disabled=client.disabled,
        created_at=client.created_at,
        updated_at=client.updated_at,
        secrets=[SecretView(s.id, s.created_at, s.expires_at) for s in live],
    )


class ClientRegistry:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        hasher: SecretHasher,
        *,
        default_audience: str,
        first_party_client_id: str,
        audit: AuditLog | None = None,
        revocations: RevocationLog | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._hasher = hasher
        self._audit = audit
        self._revocations = revocations
        self._default_audience = default_audience
        self._first_party = first_party_client_id
        self._now = now

    async def create(
        self,
        client_id: str,
        *,
        scopes: Sequence[str],
        audiences: Sequence[str] = (),
        secret: bool = False,
        jwks: Any = None,
        jwks_uri: str | None = None,
        name: str | None = None,
        actor: str = "cli",
    ) -> tuple[ClientView, str | None]:
        """A new client; returns it and its secret (the only time the secret is seen)."""
        check_client_id(client_id, first_party=self._first_party)
        if not (secret or jwks is not None or jwks_uri):
            raise ClientRefused(
                "a client needs a way to authenticate: a secret, a JWKS or a jwks_uri",
                bad_argument=True,
            )
        if jwks is not None and jwks_uri:
            raise ClientRefused("give a JWKS or a jwks_uri, not both", bad_argument=True)
        stored_jwks = None
        if jwks is not None:
            try:
                parse_jwks(jwks)
            except InvalidJwks as error:
                raise ClientRefused(str(error), bad_argument=True) from None
            stored_jwks = json.dumps(jwks, separators=(",", ":"))
        if jwks_uri:
            try:
                check_url("jwks_uri", jwks_uri, ("https", "http"))
            except ConfigError as error:
                raise ClientRefused(f"jwks_uri: {error.problem}", bad_argument=True) from None
        row = Client(
            id=client_id,
            name=(name or client_id)[:200],
            scopes=check_scopes(scopes),
            audiences=check_audiences(list(audiences) or [self._default_audience]),
            jwks=stored_jwks,
            jwks_uri=jwks_uri or None,
            disabled=False,
        )
        plain = new_secret() if secret else None
        secrets: list[ClientSecret] = []
        try:
            async with self._sessions.begin() as db:
                db.add(row)
                await db.flush()
                if plain is not None:
                    secrets.append(self._secret_row(client_id, plain))
                    db.add(secrets[0])
                self._audited(
                    db,
                    "client.created",
                    client_id,
                    actor,
                    {
                        "scopes": row.scopes,
                        "audiences": row.audiences,
                        "secret": plain is not None,
                        "jwks_uri": row.jwks_uri,
                    },
                )
        except IntegrityError:
            raise ClientRefused(f"a client {client_id} exists already") from None
        return _view(row, secrets, self._now()), plain

    def _secret_row(self, client_id: str, plain: str) -> ClientSecret:
        return ClientSecret(
            id=str(uuid.uuid4()),
            client_id=client_id,
            digest=self._hasher.digest(plain),
            created_at=self._now(),
            expires_at=None,
        )

    def _audited(
        self, db: AsyncSession, event: str, client_id: str, actor: str, data: dict[str, Any]
    ) -> None:
        if self._audit is not None:
            self._audit.add(db, event, subject=client_id, actor=actor, data=data)

    async def rotate_secret(
        self, client_id: str, *, overlap: int = DEFAULT_OVERLAP_S, actor: str = "cli"
    ) -> str:
        """A new secret; the ones before it keep working for `overlap` seconds more."""
        if overlap < 0:
            raise ClientRefused("the overlap is a number of seconds ≥ 0", bad_argument=True)
        now = self._now()
        plain = new_secret()
        async with self._sessions.begin() as db:
            client = await self._locked(db, client_id)
            for old in (await db.execute(self._secrets_of(client.id))).scalars():
                end = now + overlap
                if old.expires_at is None or old.expires_at > end:
                    old.expires_at = end
            db.add(self._secret_row(client.id, plain))
            client.updated_at = datetime.datetime.now(datetime.UTC)
            self._audited(db, "client.secret_rotated", client.id, actor, {"overlap": overlap})
        return plain

    async def set_disabled(
        self, client_id: str, disabled: bool, *, actor: str = "cli"
    ) -> ClientView:
        return await self.change(client_id, disabled=disabled, actor=actor)

    async def change(
        self,
        client_id: str,
        *,
        disabled: bool | None = None,
        scopes: Sequence[str] | None = None,
        audiences: Sequence[str] | None = None,
        name: str | None = None,
        actor: str = "cli",
    ) -> ClientView:
        changes: dict[str, Any] = {}
        if disabled is not None:
            changes["disabled"] = disabled
        if scopes is not None:
            changes["scopes"] = check_scopes(scopes)
        if audiences is not None:
            changes["audiences"] = check_audiences(audiences)
        if name is not None:
            if not name.strip() or len(name) > 200:
                raise ClientRefused("a name is 1-200 characters", bad_argument=True)
            changes["name"] = name
        async with self._sessions.begin() as db:
            client = await self._locked(db, client_id)
            for field, value in changes.items():
                setattr(client, field, value)
            client.updated_at = datetime.datetime.now(datetime.UTC)
            event = "client.changed"
            if set(changes) == {"disabled"}:
                event = "client.disabled" if disabled else "client.enabled"
            self._audited(db, event, client.id, actor, changes)
            secrets = list((await db.execute(self._secrets_of(client.id))).scalars())
            view = _view(client, secrets, self._now())
        if disabled:
            await self._cut_off(client_id)
        return view

    async def _cut_off(self, client_id: str) -> None:
        """The client's tokens issued until now stop at every verifier, not only at expiry."""
        if self._revocations is not None:
            await self._revocations.subject_cut_off(client_id)

    async def delete(self, client_id: str, *, actor: str = "cli") -> None:
        async with self._sessions.begin() as db:
            client = await self._locked(db, client_id)
            await db.delete(client)
            self._audited(db, "client.deleted", client.id, actor, {})
        await self._cut_off(client_id)

    async def get(self, client_id: str) -> ClientView:
        async with self._sessions() as db:
            client = await db.get(Client, client_id)
            if client is None:
                raise ClientRefused(f"no client {client_id}", missing=True)
            secrets = list((await db.execute(self._secrets_of(client.id))).scalars())
            return _view(client, secrets, self._now())

    async def list(self) -> list[ClientView]:
        async with self._sessions() as db:
            clients = list((await db.execute(select(Client).order_by(Client.id))).scalars())
            rows = (await db.execute(select(ClientSecret))).scalars()
            by_client: dict[str, list[ClientSecret]] = {}
            for secret in rows:
                by_client.setdefault(secret.client_id, []).append(secret)
            now = self._now()
            return [_view(client, by_client.get(client.id, []), now) for client in clients]

    @staticmethod
    def _secrets_of(client_id: str) -> Any:
        return (
            select(ClientSecret)
            .where(ClientSecret.client_id == client_id)
            .order_by(ClientSecret.created_at)
        )

    @staticmethod
    async def _locked(db: AsyncSession, client_id: str) -> Client:
        query = select(Client).where(Client.id == client_id).with_for_update()
        client = (await db.execute(query)).scalar_one_or_none()
        if client is None:
            raise ClientRefused(f"no client {client_id}", missing=True)
        return client
