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
from litestar import Litestar, Router
from litestar.di import Provide
from sqlalchemy import text

from auth_service.config import Settings
from auth_service.keys.controller import WellKnownController
from auth_service.keys.encryption import KeyEncryptor
from auth_service.keys.ring import KeyRing
from auth_service.keys.schedule import maintain_forever
from auth_service.passwords.hashing import PasswordHashing
from auth_service.sessions.controller import OAuthTokenController, SessionController
from auth_service.sessions.factory import open_store, purge_forever
from auth_service.sessions.service import SessionService
from auth_service.tokens.bearer import AccessClaims, RingKeys, bearer_claims
from auth_service.tokens.issuer import AccessTokenIssuer
from auth_service.users.controller import AccountController
from auth_service.users.service import AccountService
from kit.app import ServedApp, build_app
from kit.database import create_engine, database_down_handlers, session_factory
from kit.logs import configure_logging
from kit.openapi import BEARER_SCHEME, security_schemes
from kit.problems import dependency_down_handlers, oauth_exception_handlers
from kit.redis_options import redis_options
from kit.settings import load_or_exit
from token_verifier import TokenVerifier


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
        now=now,
    )
    holder: dict[str, AccountService] = {}

    async def email_of(user_id: str) -> str | None:
        return await holder["accounts"].email_of(user_id)

    session_service = SessionService(store, issuer, email_of, now=now)
    accounts = AccountService(
        engine,
        passwords,
        session_service,
        MovingWindowRateLimiter(_limiter_storage(settings)),
        login_failure_limit=settings.login_failure_limit,
        now=now,
    )
    holder["accounts"] = accounts

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await ring.maintain()
        await ring.reload()
        background = [
            asyncio.create_task(maintain_forever(ring, settings.key_check_interval)),
            asyncio.create_task(purge_forever(store, now=now)),
        ]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await store.close()
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
            # The OAuth routes speak RFC 6749's errors, kit's own refusals included.
            Router(
                "/",
                route_handlers=[OAuthTokenController],
                exception_handlers=oauth_exception_handlers(),
            ),
            WellKnownController,
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
            "verifier": provide(
                TokenVerifier(RingKeys(ring), issuer=settings.issuer, audience=settings.audience)
            ),
            "claims": Provide(bearer_claims),
        },
        lifespan=[lifespan],
        checks_input=True,
        security_schemes=security_schemes(BEARER_SCHEME),
        signature_namespace={"AccessClaims": AccessClaims},
    )
