"""The Litestar pieces every service is built from, so all three have the same edges."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import HTTPRoute
from litestar.types import (
    ASGIApp,
    ControllerRouterHandler,
    ExceptionHandlersMap,
    Message,
    Receive,
    Scope,
    Send,
)
from prometheus_client import Counter

from kit.clients import trusted_proxies
from kit.json_bodies import StrictJsonBodyMiddleware
from kit.logs import RequestContextMiddleware
from kit.observability import HTTP_LATENCY, HTTP_REQUESTS, ReadinessCheck, observability_handlers
from kit.openapi import ClosedStructSchemaPlugin
from kit.problems import exception_handlers
from kit.runtime import freeze_startup_objects, resolve_dependencies_in_order
from kit.settings import fail
from kit.text_input import TextInputMiddleware

MAX_BODY_BYTES = 64 * 1024


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        self.latency = HTTP_LATENCY.labels(service)
        # The counter's child per (method, status), looked up once: labels() takes a lock and
        # builds a key on every call. As many entries as the metric has children.
        self.requests: dict[tuple[str, int], Counter] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self.latency.observe(time.perf_counter() - started)
            key = (str(scope.get("method", "")), status)
            counter = self.requests.get(key)
            if counter is None:
                counter = self.requests[key] = HTTP_REQUESTS.labels(
                    self.service, key[0], str(status)
                )
            counter.inc()


class ServedApp:
    """The Litestar app with request context and metrics outside its own stack, so 404s and
    errors raised before routing carry a request id and are counted too."""

    def __init__(
        self, app: Litestar, service: str, outer: Callable[[ASGIApp], ASGIApp] | None = None
    ) -> None:
        self.litestar = app
        self.service = service
        inner: ASGIApp = RequestContextMiddleware(MetricsMiddleware(app, service))
        self._asgi = outer(inner) if outer is not None else inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.litestar, name)


def _allow_names_every_method(app: Litestar) -> None:
    """Litestar (2.25) makes a path's automatic OPTIONS answer when the path's first handler
    is registered, and keeps it when later handlers join the path, so its `Allow` named only
    those first methods (`OPTIONS, POST` for a list that is also read with GET). Each answer is
    pointed at its path's final route, which knows every method."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or "OPTIONS" not in route.route_handler_map:
            continue
        options, _ = route.route_handler_map["OPTIONS"]
        for cell in getattr(options.fn, "__closure__", None) or ():
            if isinstance(cell.cell_contents, HTTPRoute):
                cell.cell_contents = route


def build_app(
    *,
    service: str,
    title: str,
    route_handlers: Sequence[ControllerRouterHandler],
    readiness: Mapping[str, ReadinessCheck],
    extra_exception_handlers: ExceptionHandlersMap | None = None,
    outer: Callable[[ASGIApp], ASGIApp] | None = None,
    checks_input: bool = False,
    security_schemes: Mapping[str, SecurityScheme] | None = None,
    **litestar_kwargs: Any,
) -> ServedApp:
    """A service's Litestar app with the common edges; `outer` wraps everything (the
    gateway's security headers, which must be on every response, errors included).
    `checks_input` puts kit's input checks in front of every route, innermost, so that
    authentication answers first: kit.text_input's guard, then kit.json_bodies' strict decoding.
    Every service that reads its input sets it (the gateway, which forwards bodies unread, does
    not). `security_schemes` are the OpenAPI document's
    components that routes' `security=` requirements name (kit.openapi)."""
    try:
        trusted_proxies()
    except ValueError as error:
        fail(f"configuration error: TRUSTED_PROXIES: {error}")
    handlers = exception_handlers()
    handlers.update(extra_exception_handlers or {})
    resolve_dependencies_in_order()
    if checks_input:
        middleware = litestar_kwargs.get("middleware", [])
        litestar_kwargs["middleware"] = [
            *middleware,
            TextInputMiddleware,
            StrictJsonBodyMiddleware,
        ]
    app = Litestar(
        on_startup=[freeze_startup_objects],
        plugins=[ClosedStructSchemaPlugin(), *litestar_kwargs.pop("plugins", [])],
        route_handlers=[*route_handlers, *observability_handlers(service, readiness)],
        exception_handlers=handlers,
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title=title,
            version="1.0.0",
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
            components=Components(security_schemes=dict(security_schemes or {})),
        ),
        **litestar_kwargs,
    )
    _allow_names_every_method(app)
    return ServedApp(app, service, outer)
