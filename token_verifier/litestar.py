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
metadata URL when `resource_metadata` is given); a missing scope a 403 with its challenge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
    DefineMiddleware,
)
from litestar.response import Response
from litestar.types import ExceptionHandlersMap

from token_verifier.errors import InsufficientScope, TokenRejected
from token_verifier.verifier import TokenVerifier


class TokenRejectedError(NotAuthorizedException):
    """Carries a TokenRejected through Litestar's exception handling."""

    def __init__(
        self, rejected: TokenRejected, realm: str, resource_metadata: str | None = None
    ) -> None:
        super().__init__(
            detail=rejected.detail,
            headers={
                "WWW-Authenticate": rejected.www_authenticate(
                    realm, resource_metadata=resource_metadata
                )
            },
        )
        self.rejected = rejected


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


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


def rejected_token_response(
    _: Request[Any, Any, Any], error: TokenRejectedError
) -> Response[dict[str, Any]]:
    """Exception handler: the contract's problem response for a rejected token."""
    return Response(
        {
            "type": "about:blank",
            "title": "Unauthorized",
            "status": 401,
            "detail": error.rejected.detail,
            "code": error.rejected.code,
        },
        status_code=401,
        headers=error.headers,
        media_type="application/problem+json",
    )


def insufficient_scope_response(
    _: Request[Any, Any, Any], error: InsufficientScope
) -> Response[dict[str, Any]]:
    return Response(
        {
            "type": "about:blank",
            "title": "Forbidden",
            "status": 403,
            "detail": error.detail,
            "code": error.code,
        },
        status_code=403,
        headers={"WWW-Authenticate": error.www_authenticate()},
        media_type="application/problem+json",
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    TokenRejectedError: rejected_token_response,
    InsufficientScope: insufficient_scope_response,
}
