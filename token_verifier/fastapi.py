"""Protecting FastAPI routes with a TokenVerifier: a dependency, in FastAPI's own terms.

    auth = BearerAuth(verifier, realm="reports")
    app = FastAPI(lifespan=keys.lifespan, exception_handlers=EXCEPTION_HANDLERS)

    @app.get("/reports")
    async def reports(claims: Annotated[VerifiedClaims, auth.require("reports:read")]) -> …

`auth.require(*scopes)` is `Security(auth, scopes=[...])`: every scope named is needed (one
403 names them all, RFC 6750 §3.1); a router's `dependencies=[auth.require("a")]` and a route's
`auth.require("b")` both apply, the router's checked first; a dependency of your own declared
with `Security(yours, scopes=[...])` that depends on `auth` passes its scopes down (FastAPI's
`SecurityScopes`). The token is verified once per request (the verifier's cache makes the
second check a dictionary lookup) and the bearer scheme is listed in the OpenAPI document.

A scope decided in the handler (`require_scope(claims, "…")`, e.g. only for client tokens) is
answered the same way. A refusal is raised as `Refused`, a Starlette HTTPException with the
right status and `WWW-Authenticate`; `EXCEPTION_HANDLERS` (or `install(app)`) renders it as
the contract's problem body. Without the handlers the status and challenge are still right
(FastAPI's default body `{"detail": …}`), so a forgotten line never turns a refusal into a 500.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from token_verifier.errors import InsufficientScope, TokenRejected
from token_verifier.refusals import PROBLEM_JSON, Refusal, bearer_token, refusal_for
from token_verifier.verifier import TokenVerifier, VerifiedClaims, require_scopes


class Refused(HTTPException):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.status, refusal.detail, headers=refusal.headers)
        self.refusal = refusal


class BearerAuth(SecurityBase):
    """A FastAPI security dependency: the request's `VerifiedClaims`, or a refusal."""

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        realm: str,
        resource_metadata: str | None = None,
        scheme_name: str = "bearer",
    ) -> None:
        self.verifier = verifier
        self.realm = realm
        self.resource_metadata = resource_metadata
        self.model = HTTPBearerModel(bearerFormat="JWT")
        self.scheme_name = scheme_name

    async def __call__(
        self, connection: HTTPConnection, security_scopes: SecurityScopes
    ) -> VerifiedClaims:
        try:
            claims = await self.verifier.verify(
                bearer_token(connection.headers.get("authorization"))
            )
            if security_scopes.scopes:
                require_scopes(claims, security_scopes.scopes)
        except (TokenRejected, InsufficientScope) as error:
            raise Refused(refusal_for(error, self.realm, self.resource_metadata)) from None
        return claims

    def require(self, *scopes: str) -> Any:
        """The dependency for a route needing every one of `scopes` (none: any valid token)."""
        return Security(self, scopes=list(scopes))


async def refused_response(_: Request, error: Exception) -> Response:
    assert isinstance(error, Refused)
    return Response(
        error.refusal.body_bytes(),
        status_code=error.refusal.status,
        headers=error.refusal.headers,
        media_type=PROBLEM_JSON,
    )


async def insufficient_scope_response(_: Request, error: Exception) -> Response:
    """For `require_scope(claims, …)` called in a handler, as with Litestar."""
    assert isinstance(error, InsufficientScope)
    return await refused_response(_, Refused(refusal_for(error, realm="")))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    Refused: refused_response,
    InsufficientScope: insufficient_scope_response,
}


def install(app: FastAPI) -> None:
    """Add EXCEPTION_HANDLERS to an app built elsewhere."""
    for exception, handler in EXCEPTION_HANDLERS.items():
        app.add_exception_handler(exception, handler)
