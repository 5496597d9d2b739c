"""`/oauth/token`, `/oauth/introspect`, `/oauth/revoke`: form in, OAuth JSON out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency

from auth_service.oauth.forms import TOKEN_FORM, TOKEN_LOOKUP_FORM, OAuthError, read_form
from auth_service.oauth.service import OAuthService
from auth_service.tokens.responses import NO_STORE
from kit.openapi import (
    ANONYMOUS,
    CLIENT_AUTHENTICATION,
    form_body_operation,
    oauth_error_responses,
    requirements,
)
from kit.problems import oauth_exception_handlers

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
    # kit's own refusals (a control character, a body too large) in RFC 6749's shape too.
    exception_handlers = oauth_exception_handlers()

    @post(
        "/token",
        status_code=200,
        security=requirements(ANONYMOUS, CLIENT_AUTHENTICATION),
        responses=oauth_error_responses(400, 401, 413, 503),
        operation_class=form_body_operation(TOKEN_FORM, "RFC 6749 token request"),
    )
    async def token(
        self, request: Request[Any, Any, Any], oauth: NamedDependency[OAuthService]
    ) -> Response[Any]:
        """RFC 6749: `grant_type=refresh_token` (the first-party client) or
        `client_credentials` (a confidential client, `client_secret_basic` or
        `private_key_jwt`), form-encoded; OAuth error bodies."""
        return await _answer(request, oauth.token)

    @post(
        "/introspect",
        status_code=200,
        # HTTP basic, or a private_key_jwt assertion in the form.
        security=requirements(ANONYMOUS, CLIENT_AUTHENTICATION),
        responses=oauth_error_responses(400, 401, 403, 413, 503),
        operation_class=form_body_operation(TOKEN_LOOKUP_FORM, "RFC 7662 introspection request"),
    )
    async def introspect(
        self, request: Request[Any, Any, Any], oauth: NamedDependency[OAuthService]
    ) -> Response[Any]:
        """RFC 7662, for authenticated clients holding the `introspect` scope."""
        return await _answer(request, oauth.introspect)

    @post(
        "/revoke",
        status_code=200,
        media_type="text/plain",  # an empty body
        security=requirements(ANONYMOUS, CLIENT_AUTHENTICATION),
        responses=oauth_error_responses(400, 401, 413, 503),
        operation_class=form_body_operation(TOKEN_LOOKUP_FORM, "RFC 7009 revocation request"),
    )
    async def revoke(
        self, request: Request[Any, Any, Any], oauth: NamedDependency[OAuthService]
    ) -> Response[Any]:
        """RFC 7009: 200 whether or not the token was known."""
        return await _answer(request, oauth.revoke)
