"""The todo service app factory: wiring only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from litestar import Litestar
from litestar.di import Provide
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kit.app import ServedApp, build_app
from kit.database import create_engine, database_down_handlers, session_factory
from kit.logs import configure_logging
from kit.openapi import BEARER_SCHEME, security_schemes
from kit.settings import load_or_exit
from todo_service.accounts.consumer import AccountEventConsumer
from todo_service.config import Settings
from todo_service.resource.controller import ResourceMetadataController
from todo_service.tasks.controller import TaskController, owner_of, task_uuid
from todo_service.tasks.service import TaskService
from token_verifier import JwksCache, RevocationCache, TokenVerifier, VerifiedClaims
from token_verifier.client_credentials import ClientCredentials
from token_verifier.litestar import EXCEPTION_HANDLERS, bearer_auth

log = structlog.get_logger("todo")
PUBLIC_PATHS = ["^/health/", "^/metrics", "^/schema", "^/.well-known/oauth-protected-resource$"]


class KeysNotLoadedError(Exception):
    """Readiness: no verification key has been fetched yet."""


class RevocationsStaleError(Exception):
    """Readiness: the revocation list is older than its configured limit."""


def _account_events(settings: Settings, engine: AsyncEngine) -> AccountEventConsumer | None:
    if settings.client_id is None or settings.client_secret is None:
        log.warning("account_events_off", reason="TODO_CLIENT_ID and TODO_CLIENT_SECRET unset")
        return None
    auth = ClientCredentials(
        settings.token_url,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        scope="events:read",
    )
    return AccountEventConsumer(session_factory(engine), settings.events_url, auth)


def create_app(settings: Settings | None = None) -> ServedApp:
    settings = settings or load_or_exit(Settings.from_env)
    configure_logging("todo")
    engine = create_engine(settings.database_url)
    tasks = TaskService(engine)
    keys = JwksCache(
        settings.jwks_url,
        min_refresh=settings.jwks_min_refresh,
        max_refresh=settings.jwks_max_refresh,
        unknown_kid_cooldown=settings.jwks_cooldown,
    )
    revocations = RevocationCache(
        settings.revocation_url,
        interval=settings.revocation_interval,
        max_staleness=settings.revocation_max_staleness,
    )
    verifier = TokenVerifier(
        keys, issuer=settings.issuer, audience=settings.audience, revocations=revocations
    )

    consumer = _account_events(settings, engine)

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await keys.start()
        await revocations.start()
        following = asyncio.create_task(consumer.run_forever()) if consumer else None
        try:
            yield
        finally:
            if following is not None:
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await following
                await consumer.close()  # type: ignore[union-attr]
            await revocations.close()
            await keys.close()
            await engine.dispose()

    async def database_ready() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def keys_ready() -> None:
        if not keys.ready:
            raise KeysNotLoadedError("no verification keys fetched yet")

    async def account_events_ready() -> str | None:
        if consumer is None:
            return "no client credentials (TODO_CLIENT_ID): deleted accounts' tasks stay"
        if consumer.age > 60:
            return f"account events not read for {consumer.age:.0f} s"
        return None

    async def revocations_ready() -> str | None:
        """Stale is said, not failed: tokens are still verified with what is known — unless
        TODO_REVOCATION_MAX_STALENESS makes the verifier refuse them, then this is not ready."""
        limit = settings.revocation_max_staleness
        if limit is not None and revocations.age > limit:
            raise RevocationsStaleError(f"revocation list older than {limit} s")
        return f"revocation list {revocations.age:.0f} s old" if revocations.stale else None

    return build_app(
        service="todo",
        title="Todo service",
        route_handlers=[TaskController, ResourceMetadataController],
        readiness={
            "database": database_ready,
            "jwks": keys_ready,
            "revocations": revocations_ready,
            "account_events": account_events_ready,
        },
        extra_exception_handlers={
            **database_down_handlers(),
            **EXCEPTION_HANDLERS,
        },
        dependencies={
            "tasks": Provide(lambda: tasks, use_cache=True, sync_to_thread=False),
            "settings": Provide(lambda: settings, use_cache=True, sync_to_thread=False),
            "owner": Provide(owner_of, sync_to_thread=False),
            "task": Provide(task_uuid, sync_to_thread=False),
        },
        middleware=[
            bearer_auth(
                verifier,
                realm=settings.audience[0],
                exclude=PUBLIC_PATHS,
                resource_metadata=settings.resource_metadata_url,
            )
        ],
        lifespan=[lifespan],
        checks_input=True,
        security_schemes=security_schemes(BEARER_SCHEME),
        signature_namespace={"VerifiedClaims": VerifiedClaims},
    )
