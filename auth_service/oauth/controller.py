"""`/oauth/token`, `/oauth/introspect`, `/oauth/revoke`: form in, OAuth JSON out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency

from auth_service.oauth.forms import OAuthError, read_form
from auth_service.oauth.service import OAuthService
from auth_service.tokens.responses import NO_STORE

Handler = Callable[[str | None, Mapping[str, str]], Awaitable[Any]]


async def _answer(request: Request[Any, Any, Any], handler: Handler) -> Response[Any]:
    try:
        form = await read_form(request)
        body = await handler(request.headers.get("authorization"), form)
    except OAuthError as error:
        return error.response()
    if body is None:  # RFC 7009: the body carries nothing
        return Response(b"", status_code=200, headers=NO_STORE, media_type="text/plain")
    return Response(body, status_code=200, headers=NO_STORE, media_type="application/json")


class OAuthController(Controller):
    path = "/oauth"
    tags = ["oauth"]

    @post("/token", status_code=200)
    async def token(
        self, request: Request[Any, Any, Any], oauth: NamedDependency[OAuthService]
    ) -> Response[Any]:
        """RFC 6749: `grant_type=refresh_token` (the first-party client) or
        `client_credentials` (a confidential client, `client_secret_basic` or
        `private_key_jwt`), form-encoded; OAuth error bodies."""
        return await _answer(request, oauth.token)

    @post("/introspect", status_code=200)
    async def introspect(
        self, request: Request[Any, Any, Any], oauth: NamedDependency[OAuthService]
    ) -> Response[Any]:
        """RFC 7662, for authenticated clients holding the `introspect` scope."""
        return await _answer(request, oauth.introspect)

    @post("/revoke", status_code=200)
    async def revoke(
        self, request: Request[Any, Any, Any], oauth: NamedDependency[OAuthService]
    ) -> Response[Any]:
        """RFC 7009: 200 whether or not the token was known."""
        return await _answer(request, oauth.revoke)
