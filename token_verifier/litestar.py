"""Protecting a Litestar app with a TokenVerifier.

    verifier = TokenVerifier(JwksCache(url), issuer=..., audience="todo-api")
    app = Litestar(
        route_handlers=[...],
        middleware=[bearer_auth(verifier, exclude=["/health", "/metrics", "/schema"])],
        on_startup=[verifier_keys.start], on_shutdown=[verifier_keys.close],
    )
    # in a handler: claims = request.user  (a VerifiedClaims)
    #               require_scope(claims, "tasks:read")  (403 insufficient_scope otherwise)

A rejected request gets a 401 problem response with the RFC 6750 challenge (naming the RFC 9728
metadata URL when `resource_metadata` is given); a missing scope a 403 with its challenge: the
same bodies and headers as every other adapter (refusals.py). A route can also name its scopes
as a guard: `@get("/reports", guards=[requires_scopes("reports:read")])`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
    DefineMiddleware,
)
from litestar.response import Response
from litestar.types import ExceptionHandlersMap

from token_verifier.errors import InsufficientScope, TokenRejected
from token_verifier.refusals import PROBLEM_JSON, Refusal, bearer_token, refusal_for
from token_verifier.verifier import TokenVerifier, VerifiedClaims, require_scopes

__all__ = [
    "EXCEPTION_HANDLERS",
    "BearerAuthMiddleware",
    "TokenRejectedError",
    "bearer_auth",
    "bearer_token",
    "insufficient_scope_response",
    "rejected_token_response",
    "requires_scopes",
]


class TokenRejectedError(NotAuthorizedException):
    """Carries a TokenRejected through Litestar's exception handling."""

    def __init__(
        self, rejected: TokenRejected, realm: str, resource_metadata: str | None = None
    ) -> None:
        self.refusal = refusal_for(rejected, realm, resource_metadata)
        super().__init__(detail=rejected.detail, headers=self.refusal.headers)
        self.rejected = rejected


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    def __init__(
        self,
        app: Any,
        *,
        verifier: TokenVerifier,
        realm: str,
        exclude: str | list[str] | None = None,
        resource_metadata: str | None = None,
    ) -> None:
        super().__init__(app, exclude=exclude)
        self._verifier = verifier
        self._realm = realm
        self._resource_metadata = resource_metadata

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        token = bearer_token(connection.headers.get("authorization"))
        try:
            claims = await self._verifier.verify(token)
        except TokenRejected as rejected:
            raise TokenRejectedError(rejected, self._realm, self._resource_metadata) from None
        return AuthenticationResult(user=claims, auth=token)


def bearer_auth(
    verifier: TokenVerifier,
    *,
    realm: str = "todo-api",
    exclude: Sequence[str] = (),
    resource_metadata: str | None = None,
) -> DefineMiddleware:
    return DefineMiddleware(
        BearerAuthMiddleware,
        verifier=verifier,
        realm=realm,
        exclude=list(exclude) or None,
        resource_metadata=resource_metadata,
    )


def _problem(refusal: Refusal) -> Response[dict[str, Any]]:
    return Response(
        refusal.body(),
        status_code=refusal.status,
        headers=refusal.headers,
        media_type=PROBLEM_JSON,
    )


def rejected_token_response(
    _: Request[Any, Any, Any], error: TokenRejectedError
) -> Response[dict[str, Any]]:
    """Exception handler: the contract's problem response for a rejected token."""
    return _problem(error.refusal)


def insufficient_scope_response(
    _: Request[Any, Any, Any], error: InsufficientScope
) -> Response[dict[str, Any]]:
    return _problem(refusal_for(error, realm=""))


def requires_scopes(*scopes: str) -> Any:
    """A route guard: 403 `insufficient_scope` unless the token holds every one of `scopes`."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        claims = connection.user
        if not isinstance(claims, VerifiedClaims):
            raise RuntimeError("bearer_auth does not protect this route")
        require_scopes(claims, scopes)

    return guard


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    TokenRejectedError: rejected_token_response,
    InsufficientScope: insufficient_scope_response,
}
