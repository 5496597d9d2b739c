"""Protecting a Starlette app: the ASGI middleware for the whole app, and per-endpoint scopes.

    app = Starlette(
        routes=[Route("/reports", reports)],
        middleware=[Middleware(BearerAuthMiddleware, verifier=verifier, realm="reports",
                               exclude=["^/health"])],
        lifespan=keys.lifespan,
    )

    @requires_scopes("reports:read")
    async def reports(request: Request) -> Response:
        claims = claims_of(request)
        ...

Starlette's own `@requires("reports:read")` also works on the claims the middleware sets, but
answers 403 without the contract's body or the `insufficient_scope` challenge;
`requires_scopes` answers as every other adapter does.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from token_verifier.asgi import BearerAuthMiddleware
from token_verifier.errors import InsufficientScope
from token_verifier.refusals import PROBLEM_JSON, Refusal, refusal_for
from token_verifier.verifier import VerifiedClaims, require_scopes

Endpoint = Callable[[Request], Awaitable[Response]]

__all__ = ["BearerAuthMiddleware", "claims_of", "refusal_response", "requires_scopes"]


def claims_of(request: Request) -> VerifiedClaims:
    """The request's verified claims (set by BearerAuthMiddleware)."""
    claims = request.scope.get("user")
    if not isinstance(claims, VerifiedClaims):
        raise RuntimeError("BearerAuthMiddleware does not protect this route")
    return claims


def refusal_response(refusal: Refusal) -> Response:
    return Response(
        refusal.body_bytes(),
        status_code=refusal.status,
        headers=refusal.headers,
        media_type=PROBLEM_JSON,
    )


def requires_scopes(*scopes: str) -> Callable[[Endpoint], Endpoint]:
    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            try:
                require_scopes(claims_of(request), scopes)
            except InsufficientScope as error:
                return refusal_response(refusal_for(error, realm=""))
            return await endpoint(request)

        return guarded

    return decorate
