"""The auth service app factory: wiring only."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.exceptions
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from litestar import Litestar
from litestar.di import Provide
from sqlalchemy import text

from auth_service.admin.controller import AdminClientsController, AdminUsersController
from auth_service.admin.guard import no_factors
from auth_service.admin.service import AdminService
from auth_service.audit.controller import ActivityController
from auth_service.audit.log import AuditLog, remember_origin
from auth_service.clients.authentication import ClientAuthenticator
from auth_service.clients.keys import RemoteClientKeys
from auth_service.clients.registry import ClientRegistry
from auth_service.clients.replay import RedisReplayGuard, ReplayGuard, SqlReplayGuard
from auth_service.clients.secrets import SecretHasher
from auth_service.config import Settings
from auth_service.events.controller import EventsController
from auth_service.events.outbox import Outbox
from auth_service.keys.controller import SCOPES_SUPPORTED, WellKnownController
from auth_service.keys.encryption import KeyEncryptor
from auth_service.keys.ring import KeyRing
from auth_service.keys.schedule import maintain_forever
from auth_service.oauth.controller import OAuthController
from auth_service.oauth.service import OAuthService
from auth_service.passwords.hashing import PasswordHashing
from auth_service.revocations.controller import RevocationController
from auth_service.revocations.log import RevocationLog
from auth_service.sessions.controller import SessionController
from auth_service.sessions.factory import open_store, purge_forever
from auth_service.sessions.service import SessionService
from auth_service.tokens.bearer import AccessClaims, RingKeys, bearer_claims
from auth_service.tokens.issuer import AccessTokenIssuer
from auth_service.users.controller import AccountController
from auth_service.users.service import AccountService
from kit.app import ServedApp, build_app
from kit.database import create_engine, database_down_handlers, session_factory
from kit.logs import configure_logging
from kit.openapi import (
    BEARER_SCHEME,
    CLIENT_BASIC_SCHEME,
    client_credentials_scheme,
    security_schemes,
)
from kit.problems import dependency_down_handlers
from kit.redis_options import redis_options
from kit.settings import load_or_exit
from token_verifier import ANY_AUDIENCE, TokenVerifier


def _limiter_storage(settings: Settings) -> Storage:
    if settings.redis_url is None:
        return MemoryStorage()
    uri = (
        "async+" + settings.redis_url
        if not settings.redis_url.startswith("async+")
        else settings.redis_url
    )
    return RedisStorage(
        uri,
        implementation="redispy",
        key_prefix=f"{settings.redis_prefix}limits",
        **redis_options(timeout_s=2),
    )


def create_app(
    settings: Settings | None = None, *, now: Callable[[], float] = time.time
) -> ServedApp:
    settings = settings or load_or_exit(Settings.from_env)
    configure_logging("auth")
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    ring = KeyRing(
        sessions,
        KeyEncryptor(settings.key_encryption_key),
        alg=settings.signing_alg,
        access_token_ttl=settings.access_token_ttl,
        rotation_interval=settings.key_rotation_interval,
        jwks_max_age=settings.jwks_max_age,
        now=now,
    )
    passwords = PasswordHashing(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
        workers=settings.hash_workers,
        queue=settings.hash_queue,
    )
    store = open_store(settings, sessions)
    issuer = AccessTokenIssuer(
        ring,
        issuer=settings.issuer,
        audience=settings.audience,
        ttl=settings.access_token_ttl,
        first_party_client_id=settings.first_party_client_id,
        now=now,
    )
    holder: dict[str, AccountService] = {}

    async def email_of(user_id: str) -> str | None:
        return await holder["accounts"].email_of(user_id)

    revocations = RevocationLog(sessions, access_token_ttl=settings.access_token_ttl, now=now)
    audit = AuditLog(sessions, retention=settings.audit_retention, now=now)
    outbox = Outbox(sessions, now=now)
    session_service = SessionService(store, issuer, email_of, revocations, audit, now=now)
    accounts = AccountService(
        engine,
        passwords,
        session_service,
        MovingWindowRateLimiter(_limiter_storage(settings)),
        audit,
        outbox,
        revocations,
        login_failure_limit=settings.login_failure_limit,
        now=now,
    )
    holder["accounts"] = accounts
    replay: ReplayGuard = (
        SqlReplayGuard(sessions)
        if settings.redis_url is None
        else RedisReplayGuard(settings.redis_url, prefix=f"{settings.redis_prefix}assertions:")
    )
    remote_client_keys = RemoteClientKeys()
    secret_hasher = SecretHasher(settings.key_encryption_key)
    ring_keys = RingKeys(ring)
    oauth = OAuthService(
        ClientAuthenticator(
            engine,
            secret_hasher,
            remote_client_keys,
            replay,
            # The issuer, or the endpoint the assertion is presented at (what standard
            # clients, Authlib's among them, put in `aud` by default).
            assertion_audiences=frozenset(
                {settings.issuer}
                | {f"{settings.issuer}/oauth/{name}" for name in ("token", "introspect", "revoke")}
            ),
            now=now,
        ),
        issuer,
        session_service,
        TokenVerifier(ring_keys, issuer=settings.issuer, audience=ANY_AUDIENCE, now=now),
        first_party_client_id=settings.first_party_client_id,
        issuer_url=settings.issuer,
        access_token_ttl=settings.access_token_ttl,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await ring.maintain()
        await ring.reload()
        background = [
            asyncio.create_task(maintain_forever(ring, settings.key_check_interval)),
            asyncio.create_task(purge_forever(store, now=now)),
            asyncio.create_task(purge_forever(revocations, now=now, interval=60)),
            asyncio.create_task(purge_forever(audit, now=now)),
            asyncio.create_task(purge_forever(outbox, now=now)),
            asyncio.create_task(audit.write_forever()),
        ]
        if isinstance(replay, SqlReplayGuard):
            background.append(asyncio.create_task(purge_forever(replay, now=now)))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await audit.flush()
            await store.close()
            await replay.close()
            await remote_client_keys.close()
            passwords.close()
            await engine.dispose()

    async def database_ready() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    def provide(value: Any) -> Provide:
        return Provide(lambda: value, use_cache=True, sync_to_thread=False)

    return build_app(
        service="auth",
        title="Auth service",
        route_handlers=[
            AccountController,
            SessionController,
            OAuthController,
            WellKnownController,
            RevocationController,
            ActivityController,
            AdminUsersController,
            AdminClientsController,
            EventsController,
        ],
        readiness={
            "database": database_ready,
            "session_store": store.ping,
            "password_hashing": passwords.ping,
        },
        extra_exception_handlers={
            **database_down_handlers(),
            **dependency_down_handlers(
                redis.exceptions.ConnectionError, redis.exceptions.TimeoutError
            ),
        },
        dependencies={
            "settings": provide(settings),
            "ring": provide(ring),
            "accounts": provide(accounts),
            "session_service": provide(session_service),
            "oauth": provide(oauth),
            "revocations": provide(revocations),
            "audit": provide(audit),
            "administration": provide(
                AdminService(sessions, session_service, accounts, revocations, audit, outbox)
            ),
            "outbox": provide(outbox),
            "registry": provide(
                ClientRegistry(
                    sessions,
                    secret_hasher,
                    default_audience=settings.audience[0],
                    first_party_client_id=settings.first_party_client_id,
                    audit=audit,
                    revocations=revocations,
                    now=now,
                )
            ),
            "has_second_factor": provide(no_factors),
            "verifier": provide(
                TokenVerifier(ring_keys, issuer=settings.issuer, audience=settings.audience)
            ),
            "claims": Provide(bearer_claims),
        },
        lifespan=[lifespan],
        before_request=remember_origin,
        checks_input=True,
        security_schemes={
            **security_schemes(BEARER_SCHEME, CLIENT_BASIC_SCHEME),
            # Where clients get tokens: OAuth tooling (and schemathesis) know the endpoint.
            "oauth2ClientCredentials": client_credentials_scheme(
                "/oauth/token", {scope: scope for scope in SCOPES_SUPPORTED}
            ),
        },
        signature_namespace={"AccessClaims": AccessClaims},
    )
