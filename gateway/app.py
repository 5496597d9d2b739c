"""The gateway app factory: wiring only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.static_files import create_static_files_router

from gateway.config import Settings
from gateway.edge.cors import (
    CORS_ALLOWED_HEADERS,
    CORS_EXPOSED_HEADERS,
    CORS_MAX_AGE_S,
    CORS_METHODS,
)
from gateway.edge.headers import SecurityHeadersMiddleware
from gateway.edge.ratelimit import AuthRateLimit, limiter_storage
from gateway.proxy.controller import Proxy, ProxyController
from gateway.proxy.forwarder import Forwarder
from gateway.proxy.upstreams import Upstream, Upstreams
from kit.app import ServedApp, build_app
from kit.logs import configure_logging
from kit.observability import ReadinessCheck
from kit.settings import load_or_exit

WEB_CLIENT = Path(__file__).parent / "web"
READINESS_TIMEOUT = aiohttp.ClientTimeout(total=2)


class UpstreamNotReadyError(Exception):
    pass


def _upstream_ready(forwarder: Forwarder, upstream: Upstream) -> ReadinessCheck:
    """Ready when at least one replica of the service says it is ready."""

    async def check() -> None:
        async def one(url: str) -> bool:
            try:
                async with forwarder.session.get(
                    f"{url}/health/ready", timeout=READINESS_TIMEOUT
                ) as response:
                    return response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                return False

        answers = await asyncio.gather(*(one(url) for url in upstream.urls))
        if not any(answers):
            raise UpstreamNotReadyError(f"no {upstream.name} replica is ready")

    return check


def create_app(settings: Settings | None = None) -> ServedApp:
    settings = settings or load_or_exit(Settings.from_env)
    configure_logging("gateway")
    forwarder = Forwarder(
        connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout
    )
    upstreams = Upstreams(
        Upstream("auth", settings.auth_urls),
        Upstream("todo", settings.todo_urls),
        trusted_proxies=settings.trusted_proxies,
    )
    rate_limit = AuthRateLimit(
        limiter_storage(settings.redis_url, settings.redis_prefix), settings.auth_rate_limit
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await forwarder.open()
        try:
            yield
        finally:
            await forwarder.close()

    readiness: dict[str, ReadinessCheck] = {
        "auth": _upstream_ready(forwarder, upstreams.auth),
        "todo": _upstream_ready(forwarder, upstreams.todo),
    }
    if settings.redis_url is not None:
        readiness["rate_limit_storage"] = rate_limit.check_storage

    handlers: list[object] = [ProxyController]
    if WEB_CLIENT.is_dir():
        handlers.append(
            create_static_files_router(
                path="/", directories=[WEB_CLIENT], html_mode=True, include_in_schema=False
            )
        )
    cors = (
        CORSConfig(
            allow_origins=list(settings.cors_origins),
            allow_credentials=True,
            allow_methods=list(CORS_METHODS),
            allow_headers=list(CORS_ALLOWED_HEADERS),
            expose_headers=list(CORS_EXPOSED_HEADERS),
            max_age=CORS_MAX_AGE_S,
        )
        if settings.cors_origins
        else None
    )
    return build_app(
        service="gateway",
        title="API gateway",
        route_handlers=handlers,  # type: ignore[arg-type]
        readiness=readiness,
        state=State({"proxy": Proxy(forwarder, upstreams, rate_limit)}),
        cors_config=cors,
        lifespan=[lifespan],
        outer=lambda app: SecurityHeadersMiddleware(app, hsts=settings.hsts),
    )
