"""A small FastAPI service protected by the verifier: our code, FastAPI's conventions (an
APIRouter, `Annotated` dependencies, pydantic response models, a lifespan). The contract's rules
for a resource: a person's token acts on that person's resources only (403 `forbidden`
otherwise); a client's token needs `tasks:read` to read anyone's and the route under
/admin needs `reports:admin` whoever asks.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at definition,
# and `Claims` below is local to the factory.
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from token_verifier import (
    JwksCache,
    KeySource,
    RevocationCache,
    TokenVerifier,
    VerifiedClaims,
    require_scope,
)
from token_verifier.fastapi import EXCEPTION_HANDLERS, BearerAuth
from token_verifier.metadata import resource_metadata, resource_metadata_url
from token_verifier.refusals import PROBLEM_JSON

RESOURCE = "http://reports.internal"
SCOPES = ["tasks:read", "tasks:write", "reports:admin"]


class Summary(BaseModel):
    user_id: str
    read_by: str
    as_client: bool


class Forbidden(Exception):
    pass


async def forbidden_response(_: Request, __: Exception) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "not your resource",
        "code": "forbidden",
    }
    return JSONResponse(body, status_code=403, media_type=PROBLEM_JSON)


def _lifespan(keys: KeySource, revocations: RevocationCache | None) -> Any:
    """Keys fetched (and the revocation list, when there is one) before the app serves."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if isinstance(keys, JwksCache):
                await stack.enter_async_context(keys)
            if revocations is not None:
                await stack.enter_async_context(revocations)
            yield

    return lifespan


def create_app(
    keys: KeySource,
    *,
    issuer: str,
    audience: str,
    authorization_server: str,
    revocations: RevocationCache | None = None,
    now: Callable[[], float] = time.time,
) -> FastAPI:
    verifier = TokenVerifier(
        keys, issuer=issuer, audience=audience, revocations=revocations, now=now
    )
    auth = BearerAuth(verifier, realm=audience, resource_metadata=resource_metadata_url(RESOURCE))
    Claims = Annotated[VerifiedClaims, auth.require()]
    router = APIRouter(prefix="/api")

    @router.get("/{user_id}/summary")
    async def summary(user_id: str, claims: Claims) -> Summary:
        if claims.is_client:
            require_scope(claims, "tasks:read")
        elif claims.sub != user_id:
            raise Forbidden
        return Summary(user_id=user_id, read_by=claims.sub, as_client=claims.is_client)

    admin = APIRouter(prefix="/admin", dependencies=[auth.require("reports:admin")])

    @admin.get("/reports")
    async def reports(claims: Annotated[VerifiedClaims, auth.require("tasks:read")]) -> list[str]:
        # Both levels' scopes apply: reports:admin from the router, tasks:read from the route.
        return [claims.sub]

    app = FastAPI(
        title="reports",
        lifespan=_lifespan(keys, revocations),
        exception_handlers={**EXCEPTION_HANDLERS, Forbidden: forbidden_response},
    )

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/.well-known/oauth-protected-resource")
    async def metadata() -> dict[str, object]:
        return resource_metadata(
            RESOURCE, authorization_servers=[authorization_server], scopes_supported=SCOPES
        )

    app.include_router(router)
    app.include_router(admin)
    return app
