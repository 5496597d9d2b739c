"""The gateway app factory: wiring only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import httpx
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.static_files import create_static_files_router

from gateway.config import Settings
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


class UpstreamNotReadyError(Exception):
    pass


def _upstream_ready(client: httpx.AsyncClient, upstream: Upstream) -> ReadinessCheck:
    """Ready when at least one replica of the service says it is ready."""

    async def check() -> None:
        async def one(url: str) -> bool:
            try:
                response = await client.get(f"{url}/health/ready", timeout=2)
            except httpx.HTTPError:
                return False
            return response.status_code == 200

        answers = await asyncio.gather(*(one(url) for url in upstream.urls))
        if not any(answers):
            raise UpstreamNotReadyError(f"no {upstream.name} replica is ready")

    return check


def create_app(settings: Settings | None = None) -> ServedApp:
    settings = settings or load_or_exit(Settings.from_env)
    configure_logging("gateway")
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout, pool=5.0),
        limits=httpx.Limits(max_connections=512, max_keepalive_connections=128),
        follow_redirects=False,
        trust_env=False,
        # The client is shared by every request: it must never keep an upstream's cookies,
        # or the next caller would be sent the previous caller's refresh token.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
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
        try:
            yield
        finally:
            await client.aclose()

    readiness: dict[str, ReadinessCheck] = {
        "auth": _upstream_ready(client, upstreams.auth),
        "todo": _upstream_ready(client, upstreams.todo),
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
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Auth-Mode", "X-Request-ID"],
            expose_headers=["Retry-After", "X-Request-ID", "WWW-Authenticate"],
            max_age=600,
        )
        if settings.cors_origins
        else None
    )
    return build_app(
        service="gateway",
        title="API gateway",
        route_handlers=handlers,  # type: ignore[arg-type]
        readiness=readiness,
        state=State({"proxy": Proxy(Forwarder(client), upstreams, rate_limit)}),
        cors_config=cors,
        lifespan=[lifespan],
        outer=lambda app: SecurityHeadersMiddleware(app, hsts=settings.hsts),
    )
