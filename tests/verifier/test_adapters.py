"""One verification core under every adapter: the same request gets the same status, body and
`WWW-Authenticate` from the pure ASGI middleware, Starlette, FastAPI and Litestar; bad input is
a 401, never a 500. Also the RFC 9728 helper and the revocation seam."""

# No `from __future__ import annotations`: FastAPI resolves a route's annotations where it is
# defined, and the routes below close over a local `auth`.

import time
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI
from litestar import Litestar, Request, get
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.security.forge import AUDIENCE, ISSUER, SigningKey, claims_for
from token_verifier import StaticKeys, TokenRejected, TokenVerifier, VerifiedClaims
from token_verifier.asgi import BearerAuthMiddleware, Message, Scope
from token_verifier.fastapi import EXCEPTION_HANDLERS as FASTAPI_HANDLERS
from token_verifier.fastapi import BearerAuth
from token_verifier.litestar import EXCEPTION_HANDLERS as LITESTAR_HANDLERS
from token_verifier.litestar import bearer_auth
from token_verifier.litestar import requires_scopes as litestar_scopes
from token_verifier.metadata import resource_metadata, resource_metadata_url
from token_verifier.starlette import claims_of, requires_scopes

KEY = SigningKey.generate("ES256", "adapters-es256")
METADATA = "https://reports.example/.well-known/oauth-protected-resource"
REALM = AUDIENCE


def verifier(**options: Any) -> TokenVerifier:
    keys = StaticKeys({"keys": [KEY.public_jwk()]})
    return TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, **options)


async def bare_endpoint(scope: Scope, receive: Callable[[], Any], send: Callable[..., Any]) -> None:
    claims = scope["user"]
    body = f'{{"sub":"{claims.sub}"}}'.encode()
    headers = [(b"content-type", b"application/json")]
    start: Message = {"type": "http.response.start", "status": 200, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})


def asgi_app() -> Any:
    return BearerAuthMiddleware(
        bare_endpoint,
        verifier=verifier(),
        realm=REALM,
        scopes=["tasks:read"],
        resource_metadata=METADATA,
    )


def starlette_app() -> Any:
    @requires_scopes("tasks:read")
    async def protected(request: StarletteRequest) -> Response:
        return JSONResponse({"sub": claims_of(request).sub})

    middleware = Middleware(
        BearerAuthMiddleware, verifier=verifier(), realm=REALM, resource_metadata=METADATA
    )
    return Starlette(routes=[Route("/protected", protected)], middleware=[middleware])


def fastapi_app() -> Any:
    auth = BearerAuth(verifier(), realm=REALM, resource_metadata=METADATA)
    app = FastAPI(exception_handlers=FASTAPI_HANDLERS)

    @app.get("/protected")
    async def protected(
        claims: Annotated[VerifiedClaims, auth.require("tasks:read")],
    ) -> dict[str, str]:
        return {"sub": claims.sub}

    return app


def litestar_app() -> Any:
    @get("/protected", guards=[litestar_scopes("tasks:read")])
    async def protected(request: Request[VerifiedClaims, Any, Any]) -> dict[str, str]:
        return {"sub": request.user.sub}

    return Litestar(
        [protected],
        middleware=[bearer_auth(verifier(), realm=REALM, resource_metadata=METADATA)],
        exception_handlers=LITESTAR_HANDLERS,
    )


ADAPTERS = {
    "asgi": asgi_app,
    "starlette": starlette_app,
    "fastapi": fastapi_app,
    "litestar": litestar_app,
}


def person(**overrides: Any) -> str:
    return KEY.sign({}, claims_for("ada", **overrides))


def client(scope: str) -> str:
    return KEY.sign({}, claims_for("reports-job", sid=..., client_id="reports-job", scope=scope))


def authorizations() -> dict[str, bytes | None]:
    """Made when a test runs, not at import: the tokens' lifetimes start then (a whole suite
    can take longer than an access token lives)."""
    return {
        "missing": None,
        "empty": b"",
        "basic": b"Basic YWRhOnNlY3JldA==",
        "bearer only": b"Bearer",
        "garbage": b"Bearer not.a.token",
        "nul": b"Bearer ey\x00J.x.y",
        "control": b"Bearer \x1b[31m.\x07.\x7f",
        "latin-1": b"Bearer \xff\xfe.\xc3\xa9.\xed\xa0\x80",  # and a lone surrogate's UTF-8 form
        "huge": b"Bearer " + b"a" * 100_000,
        "wrong type": b'Bearer {"sub": 1}',
        "expired": f"Bearer {person(exp=int(time.time()) - 3600, iat=0, nbf=0)}".encode(),
        "person, no scope": f"Bearer {person()}".encode(),
        "client, other scope": f"Bearer {client('tasks:write')}".encode(),
        "client, scope": f"Bearer {client('tasks:read tasks:write')}".encode(),
    }


async def answer(app: Any, authorization: bytes | None) -> tuple[int, str, Any, str | None]:
    headers = {} if authorization is None else {b"Authorization": authorization}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/protected", headers=headers)
    return (
        response.status_code,
        response.headers.get("content-type", ""),
        response.json(),
        response.headers.get("www-authenticate"),
    )


@pytest.mark.parametrize("case", list(authorizations()))
async def test_every_adapter_answers_alike(case: str) -> None:
    answers = {
        name: await answer(build(), authorizations()[case]) for name, build in ADAPTERS.items()
    }
    status, content_type, body, challenge = answers["asgi"]
    assert answers == dict.fromkeys(ADAPTERS, answers["asgi"]), answers
    if case == "client, scope":
        assert (status, body, challenge) == (200, {"sub": "reports-job"}, None)
        return
    assert content_type.startswith("application/problem+json")
    if case in ("person, no scope", "client, other scope"):
        assert status == 403
        assert body == {
            "type": "about:blank",
            "title": "Forbidden",
            "status": 403,
            "detail": "this request needs the scope tasks:read",
            "code": "insufficient_scope",
        }
        assert challenge == 'Bearer error="insufficient_scope", scope="tasks:read"'
        return
    assert status == 401
    assert body["title"] == "Unauthorized" and body["status"] == 401
    assert challenge is not None
    if case in ("missing", "empty", "basic", "bearer only"):
        assert body["code"] == "token_missing"
        assert challenge == f'Bearer realm="{REALM}", resource_metadata="{METADATA}"'
    else:
        assert body["code"] == ("token_expired" if case == "expired" else "token_invalid")
        assert challenge == (
            f'Bearer realm="{REALM}", error="invalid_token", '
            f'error_description="{body["detail"]}", resource_metadata="{METADATA}"'
        )


async def test_asgi_middleware_exclusions_lifespan_and_websockets() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    reached: list[str] = []

    async def app(scope: Scope, _: Any, __: Any) -> None:
        reached.append(scope["type"])

    middleware = BearerAuthMiddleware(app, verifier=verifier(), realm=REALM, exclude=["^/health"])
    await middleware({"type": "lifespan"}, receive, send)
    await middleware({"type": "http", "path": "/health/live", "headers": []}, receive, send)
    assert reached == ["lifespan", "http"] and not sent
    socket = {"type": "websocket", "path": "/feed", "headers": [(b"authorization", b"Bearer x")]}
    await middleware(socket, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert reached == ["lifespan", "http"]
    token = person().encode()
    socket = {
        "type": "websocket",
        "path": "/feed",
        "headers": [(b"authorization", b"Bearer " + token)],
    }
    await middleware(socket, receive, send)
    assert reached[-1] == "websocket"


async def test_fastapi_without_the_handlers_still_refuses_with_the_challenge() -> None:
    auth = BearerAuth(verifier(), realm=REALM)
    app = FastAPI()

    @app.get("/protected")
    async def protected(claims: Annotated[VerifiedClaims, auth.require()]) -> dict[str, str]:
        return {"sub": claims.sub}

    status, _, body, challenge = await answer(app, b"Bearer nope")
    assert status == 401 and body == {"detail": "token is not a compact JWS"}
    assert challenge is not None and challenge.startswith('Bearer realm="todo-api", error=')


def test_resource_metadata() -> None:
    assert resource_metadata(
        "https://reports.example",
        authorization_servers=["https://auth.example"],
        scopes_supported=["tasks:read"],
        resource_name="Reports",
    ) == {
        "resource": "https://reports.example",
        "authorization_servers": ["https://auth.example"],
        "scopes_supported": ["tasks:read"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Reports",
    }
    assert resource_metadata_url("https://reports.example") == METADATA
    assert resource_metadata_url("https://reports.example/") == METADATA
    assert resource_metadata_url("https://api.example:8443/reports/v1") == (
        "https://api.example:8443/.well-known/oauth-protected-resource/reports/v1"
    )
    for bad in ("reports.example", "ftp://x", "https://x/?q=1", "https://x/#f", ""):
        with pytest.raises(ValueError, match="resource"):
            resource_metadata_url(bad)


class RevokedSessions:
    """What issue 23's list will be, reduced to a set: the seam's contract, not the list."""

    def __init__(self) -> None:
        self.sessions: set[str] = set()

    def revoked(self, claims: VerifiedClaims) -> bool:
        return claims.sid in self.sessions


async def test_revocation_seam_reaches_cached_tokens() -> None:
    revocations = RevokedSessions()
    checked = verifier(revocations=revocations)
    token = person(sid="session-1")
    assert (await checked.verify(token)).sid == "session-1"
    assert (await checked.verify(token)).sid == "session-1"  # now a cache hit
    revocations.sessions.add("session-1")
    with pytest.raises(TokenRejected) as refused:
        await checked.verify(token)
    assert refused.value.code == "token_revoked"
    # a token of that session not seen before is refused the same way
    with pytest.raises(TokenRejected, match="revoked"):
        await checked.verify(person(sid="session-1"))
    assert (await checked.verify(person(sid="session-2"))).sid == "session-2"
