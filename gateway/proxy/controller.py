"""The gateway's routes: each public prefix forwarded to the service that owns it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, HttpMethod, Request, route
from litestar.response.base import ASGIResponse

from gateway.edge.ratelimit import AuthRateLimit
from gateway.proxy.forwarder import Forwarder
from gateway.proxy.upstreams import Upstreams
from kit.clients import client_address, client_scheme

# RFC 9728: the todo service describes itself; every other /.well-known/ path is the auth
# service's.
PROTECTED_RESOURCE_METADATA = "/.well-known/oauth-protected-resource"
METHODS = [
    HttpMethod.GET,
    HttpMethod.HEAD,
    HttpMethod.POST,
    HttpMethod.PUT,
    HttpMethod.PATCH,
    HttpMethod.DELETE,
]


@dataclass(frozen=True)
class Proxy:
    """What forwarding needs, kept in the app's state: read with one lookup per request
    rather than through dependency injection, which measurably costs on this hot path."""

    forwarder: Forwarder
    upstreams: Upstreams
    rate_limit: AuthRateLimit


class ProxyController(Controller):
    include_in_schema = False

    @route(
        ["/auth/{path:path}", "/oauth/{path:path}", "/.well-known/{path:path}", "/api/{path:path}"],
        http_method=METHODS,
    )
    async def forward(self, request: Request[Any, Any, Any]) -> ASGIResponse:
        """`/api/*` and the protected-resource metadata to the todo service, everything else
        here to the auth service."""
        proxy: Proxy = request.app.state.proxy
        path: str = request.scope["path"]
        trusted = proxy.upstreams.trusted_proxies
        address = client_address(request, trusted)
        await proxy.rate_limit.check(request.method, path, address)
        to_todo = path.startswith("/api/") or path == PROTECTED_RESOURCE_METADATA
        upstream = proxy.upstreams.todo if to_todo else proxy.upstreams.auth
        return await proxy.forwarder.forward(
            request, upstream, address, client_scheme(request, trusted)
        )
