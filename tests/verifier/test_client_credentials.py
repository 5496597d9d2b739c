"""The client-credentials helper (token_verifier/client_credentials.py) against a stub token
endpoint served over loopback HTTP by uvicorn: one token request for many callers, renewal before
expiry, one retry on a 401 `invalid_token`, `client_secret_basic` and `private_key_jwt`.
(The lead tests the same grant against the real auth service with Authlib.)"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.infra import free_port
from token_verifier.client_credentials import (
    ASSERTION_TYPE,
    ClientCredentials,
    TokenRequestError,
)

CLIENT_ID = "reports-job"
SECRET = "s3cret:with/odd+chars"
CLIENT_KEY = ECKey.generate_key("P-256", parameters={"kid": "reports-key"})


@dataclass
class Stub:
    url: str
    expires_in: int = 300
    refuse_everything: bool = False
    token_requests: list[dict[str, str]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth/token"


def stub_app(stub: Stub) -> Starlette:
    async def token(request: Request) -> Response:
        form = dict(urllib.parse.parse_qsl((await request.body()).decode(), strict_parsing=True))
        stub.token_requests.append(form)
        if not client_authenticated(request, form, stub.token_url):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        issued = secrets.token_urlsafe(16)
        stub.issued.append(issued)
        body = {"access_token": issued, "token_type": "Bearer", "expires_in": stub.expires_in}
        return JSONResponse({**body, "scope": form.get("scope", "")})

    async def resource(request: Request) -> Response:
        # Only the newest token is good: an older one is what a revoked or rotated one looks like.
        newest = f"Bearer {stub.issued[-1]}" if stub.issued else None
        if not stub.refuse_everything and request.headers.get("authorization") == newest:
            return JSONResponse({"ok": True})
        challenge = 'Bearer realm="stub", error="invalid_token"'
        return JSONResponse({}, status_code=401, headers={"WWW-Authenticate": challenge})

    routes = [Route("/oauth/token", token, methods=["POST"]), Route("/resource", resource)]
    return Starlette(routes=routes)


def client_authenticated(request: Request, form: dict[str, str], token_url: str) -> bool:
    authorization = request.headers.get("authorization", "")
    if authorization.startswith("Basic "):
        # RFC 6749 §2.3.1: both form-urlencoded before base64
        pair = base64.b64decode(authorization[6:]).decode()
        return pair == "reports-job:s3cret%3Awith%2Fodd%2Bchars"
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        return False
    decoded = jwt.decode(form["client_assertion"], CLIENT_KEY, algorithms=["ES256"])
    claims = decoded.claims
    return (
        claims["iss"] == claims["sub"] == CLIENT_ID
        and claims["aud"] == token_url
        and time.time() < claims["exp"] <= time.time() + 60
        and decoded.header.get("kid") == "reports-key"
    )


@pytest.fixture
async def stub() -> AsyncIterator[Stub]:
    port = free_port()
    state = Stub(f"http://127.0.0.1:{port}")
    config = uvicorn.Config(
        stub_app(state), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "stub token endpoint did not start"
        assert not serving.done(), serving
        await asyncio.sleep(0.01)
    yield state
    server.should_exit = True
    await serving


async def test_one_token_request_for_many_callers_and_renewal_before_expiry(stub: Stub) -> None:
    clock = [1000.0]
    auth = ClientCredentials(
        stub.token_url,
        client_id=CLIENT_ID,
        client_secret=SECRET,
        scope="tasks:read",
        resource="todo-api",
        renew_before=60,
        clock=lambda: clock[0],
    )
    try:
        tokens = await asyncio.gather(*(auth.access_token() for _ in range(20)))
        assert len(set(tokens)) == 1 and len(stub.token_requests) == 1
        assert stub.token_requests[0]["scope"] == "tasks:read"
        assert stub.token_requests[0]["resource"] == "todo-api"
        clock[0] += 300 - 60 - 1  # one second before the renewal point
        assert await auth.access_token() == tokens[0]
        clock[0] += 1
        renewed = await asyncio.gather(*(auth.access_token() for _ in range(20)))
        assert len(set(renewed)) == 1 and renewed[0] != tokens[0]
        assert len(stub.token_requests) == 2
    finally:
        await auth.aclose()


async def test_short_lived_tokens_are_renewed_at_half_their_life(stub: Stub) -> None:
    stub.expires_in = 30
    clock = [0.0]
    auth = ClientCredentials(
        stub.token_url, client_id=CLIENT_ID, client_secret=SECRET, clock=lambda: clock[0]
    )
    try:
        first = await auth.access_token()
        clock[0] = 14.9
        assert await auth.access_token() == first
        clock[0] = 15.0
        assert await auth.access_token() != first
    finally:
        await auth.aclose()


async def test_as_httpx_auth_retries_once_on_invalid_token(stub: Stub) -> None:
    auth = ClientCredentials(stub.token_url, client_id=CLIENT_ID, client_secret=SECRET)
    try:
        async with httpx.AsyncClient(auth=auth) as http:
            assert (await http.get(f"{stub.url}/resource")).status_code == 200
            stub.issued.append("rotated-away")  # the resource now refuses the token held
            response = await http.get(f"{stub.url}/resource")
            assert response.status_code == 200
            assert len(stub.token_requests) == 2
            stub.refuse_everything = True  # refused after renewal too: one retry, not a loop
            response = await http.get(f"{stub.url}/resource")
            assert response.status_code == 401
            assert len(stub.token_requests) == 3
    finally:
        await auth.aclose()


async def test_private_key_jwt(stub: Stub) -> None:
    auth = ClientCredentials(
        stub.token_url, client_id=CLIENT_ID, private_key=CLIENT_KEY.as_dict(private=True)
    )
    try:
        assert await auth.access_token() == stub.issued[-1]
        form = stub.token_requests[-1]
        assert form["client_assertion_type"] == ASSERTION_TYPE
        assert "client_secret" not in form
    finally:
        await auth.aclose()


async def test_refused_client_and_bad_answers(stub: Stub) -> None:
    wrong = ClientCredentials(stub.token_url, client_id=CLIENT_ID, client_secret="wrong")
    with pytest.raises(TokenRequestError) as refused:
        await wrong.access_token()
    assert (refused.value.status, refused.value.error) == (401, "invalid_client")
    await wrong.aclose()
    stub.expires_in = 0
    zero = ClientCredentials(stub.token_url, client_id=CLIENT_ID, client_secret=SECRET)
    with pytest.raises(TokenRequestError, match="expires_in"):
        await zero.access_token()
    await zero.aclose()
    with pytest.raises(ValueError, match="exactly one"):
        ClientCredentials(stub.token_url, client_id=CLIENT_ID)
    nowhere = ClientCredentials(
        f"http://127.0.0.1:{free_port()}/oauth/token", client_id=CLIENT_ID, client_secret=SECRET
    )
    with pytest.raises(httpx.ConnectError):
        await nowhere.access_token()
    await nowhere.aclose()


def test_sync_clients_are_told_plainly() -> None:
    auth = ClientCredentials("http://127.0.0.1:1/t", client_id=CLIENT_ID, client_secret=SECRET)
    with httpx.Client(auth=auth) as http, pytest.raises(RuntimeError, match="AsyncClient"):
        http.get("http://127.0.0.1:1/")
