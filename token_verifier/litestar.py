"""Protecting a Litestar app with a TokenVerifier.

    verifier = TokenVerifier(JwksCache(url), issuer=..., audience="todo-api")
    app = Litestar(
        route_handlers=[...],
        middleware=[bearer_auth(verifier, exclude=["/health", "/metrics", "/schema"])],
        on_startup=[verifier_keys.start], on_shutdown=[verifier_keys.close],
    )
    # in a handler: claims = request.user  (a VerifiedClaims)

A rejected request gets a 401 problem response with the RFC 6750 challenge.
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

from token_verifier.errors import TokenRejected
from token_verifier.verifier import TokenVerifier


class TokenRejectedError(NotAuthorizedException):
    """Carries a TokenRejected through Litestar's exception handling."""

    def __init__(self, rejected: TokenRejected, realm: str) -> None:
        super().__init__(
            detail=rejected.detail,
            headers={"WWW-Authenticate": rejected.www_authenticate(realm)},
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
    ) -> None:
        super().__init__(app, exclude=exclude)
        self._verifier = verifier
        self._realm = realm

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        token = bearer_token(connection.headers.get("authorization"))
        try:
            claims = await self._verifier.verify(token)
        except TokenRejected as rejected:
            raise TokenRejectedError(rejected, self._realm) from None
        return AuthenticationResult(user=claims, auth=token)


def bearer_auth(
    verifier: TokenVerifier, *, realm: str = "todo-api", exclude: Sequence[str] = ()
) -> DefineMiddleware:
    return DefineMiddleware(
        BearerAuthMiddleware, verifier=verifier, realm=realm, exclude=list(exclude) or None
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


EXCEPTION_HANDLERS: ExceptionHandlersMap = {TokenRejectedError: rejected_token_response}
