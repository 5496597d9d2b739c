"""The token matrix of the todo service, run against a FastAPI service (tests/verifier/
fastapi_service.py) protected by the package's FastAPI dependency, with tokens from a real auth
process of this module's own (it is stopped for the "auth down" rows).

Client tokens with scopes are signed with that auth process's own active key (read from its
database with its key-encryption key): the token a client-credentials grant will issue, down to
the kid. Revoked sessions: a logout at the auth service reaches the package's revocation list.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwk, jws
from prometheus_client import REGISTRY

from auth_service.config import decode_key_encryption_key
from auth_service.keys.encryption import KeyEncryptor
from tests.infra import ServiceProcess, async_wait_until, new_key_encryption_key, start_service
from tests.security.forge import SigningKey, b64json, b64u, segment
from tests.todo.conftest import User, register_user
from tests.verifier.fastapi_service import create_app
from token_verifier import JwksCache, RevocationCache

ISSUER = "http://127.0.0.1:8000"
AUDIENCE = "todo-api"
METADATA_URL = "http://reports.internal/.well-known/oauth-protected-resource"


@dataclass
class Auth:
    process: ServiceProcess
    key_encryption_key: str

    @property
    def jwks_url(self) -> str:
        return f"{self.process.url}/.well-known/jwks.json"

    def signing_key(self) -> tuple[str, str, jwk.Key]:
        """(kid, alg, private key) of the ring's active key, from the auth database."""
        database = self.process.workdir / ".data" / "auth.db"
        with sqlite3.connect(database) as connection:
            kid, alg, sealed = connection.execute(
                "SELECT kid, alg, private_key_encrypted FROM signing_keys WHERE state = 'active'"
            ).fetchone()
        encryptor = KeyEncryptor(
            decode_key_encryption_key("AUTH_KEY_ENCRYPTION_KEY", self.key_encryption_key)
        )
        return kid, alg, jwk.import_key(json.loads(encryptor.decrypt(kid, sealed)))


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Auth]:
    key_encryption_key = new_key_encryption_key()
    process = start_service(
        "auth_service",
        tmp_path_factory.mktemp("reports-auth"),
        {"AUTH_KEY_ENCRYPTION_KEY": key_encryption_key},
    )
    yield Auth(process, key_encryption_key)
    process.stop()


@pytest.fixture(scope="module")
def ada(auth: Auth) -> User:
    return register_user(auth.process, "ada")  # also makes the auth service create its key ring


@pytest.fixture(scope="module")
def mint(auth: Auth, ada: User) -> Callable[..., str]:
    """Tokens signed with the auth service's own active key: a client's with `scope`."""
    kid, alg, key = auth.signing_key()
    assert kid == segment(ada.access_token, 0)["kid"]

    def sign(sub: str = "reports-job", scope: str = "", **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "sub": sub,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
            "client_id": sub,
            "scope": scope,
            **claims,
        }
        header = {"alg": alg, "kid": kid, "typ": "at+jwt"}
        return jws.serialize_compact(header, json.dumps(payload).encode(), key, algorithms=[alg])

    return sign


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reports") as client:
            yield client


def reports(auth: Auth, **options: Any) -> tuple[FastAPI, JwksCache]:
    keys = JwksCache(auth.jwks_url, **options.pop("keys", {}))
    options = {"audience": AUDIENCE, **options}
    return create_app(keys, issuer=ISSUER, authorization_server=ISSUER, **options), keys


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(response: httpx.Response, code: str, status: int = 401) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    challenge = response.headers["www-authenticate"]
    if status == 401:
        assert challenge.startswith('Bearer realm="todo-api", error="invalid_token"'), challenge
        assert (
            'resource_metadata="http://reports.internal/.well-known/oauth-protected-resource"'
            in (challenge)
        )
    else:
        assert challenge.startswith('Bearer error="insufficient_scope", scope="'), challenge


def fetches(reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "token_verifier_jwks_fetches_total", {"result": "ok", "reason": reason}
    )
    return value or 0.0


async def test_valid_token(auth: Auth, ada: User) -> None:
    app, _ = reports(auth)
    async with serving(app) as client:
        response = await client.get(f"/api/{ada.id}/summary", headers=bearer(ada.access_token))
        assert response.status_code == 200, response.text
        assert response.json() == {"user_id": ada.id, "read_by": ada.id, "as_client": False}
        # a person's token on another person's resource: the service's own rule
        other = await client.get(f"/api/{uuid.uuid4()}/summary", headers=bearer(ada.access_token))
        assert other.status_code == 403 and other.json()["code"] == "forbidden"
        missing = await client.get(f"/api/{ada.id}/summary")
        assert missing.status_code == 401 and missing.json()["code"] == "token_missing"
        assert missing.headers["www-authenticate"] == (
            'Bearer realm="todo-api", resource_metadata="http://reports.internal/.well-known/'
            'oauth-protected-resource"'
        )
        metadata = (await client.get("/.well-known/oauth-protected-resource")).json()
        assert metadata == {
            "resource": "http://reports.internal",
            "authorization_servers": [ISSUER],
            "scopes_supported": ["tasks:read", "tasks:write", "reports:admin"],
            "bearer_methods_supported": ["header"],
        }
        assert (await client.get("/health")).status_code == 200


async def test_expired_token(auth: Auth, ada: User) -> None:
    # The service's clock an hour ahead: the real token is past exp + 60 s leeway.
    app, _ = reports(auth, now=lambda: time.time() + 3600)
    async with serving(app) as client:
        response = await client.get(f"/api/{ada.id}/summary", headers=bearer(ada.access_token))
        assert_refused(response, "token_expired")


async def test_forged_tokens(auth: Auth, ada: User) -> None:
    header, payload, signature = ada.access_token.split(".")
    claims = segment(ada.access_token, 1)
    other = str(uuid.uuid4())
    attacker = SigningKey.generate("ES256")
    forged = [
        # another subject under the genuine signature
        f"{header}.{b64json({**claims, 'sub': other})}.{signature}",
        # the genuine kid, signed by another key
        attacker.sign(segment(ada.access_token, 0), {**claims, "sub": other}),
        # no signature, alg none
        f"{b64json({'alg': 'none', 'typ': 'at+jwt'})}.{payload}.",
        f"{header}.{payload}.{b64u(b'x' * 64)}",
    ]
    app, _ = reports(auth)
    async with serving(app) as client:
        for token in forged:
            response = await client.get(f"/api/{other}/summary", headers=bearer(token))
            assert_refused(response, "token_invalid")


async def test_wrong_audience(auth: Auth, ada: User, mint: Callable[..., str]) -> None:
    app, _ = reports(auth, audience="reports-api")
    async with serving(app) as client:
        # the auth service's genuine todo-api token, at a service whose audience it is not
        response = await client.get(f"/api/{ada.id}/summary", headers=bearer(ada.access_token))
        assert response.status_code == 401
        assert response.json()["code"] == "token_invalid"
        assert "audience" in response.json()["detail"]
        right = mint(scope="tasks:read", aud="reports-api")
        assert (
            await client.get(f"/api/{ada.id}/summary", headers=bearer(right))
        ).status_code == 200


async def test_scopes(auth: Auth, ada: User, mint: Callable[..., str]) -> None:
    app, _ = reports(auth)
    async with serving(app) as client:
        reader = mint(scope="tasks:read")
        ok = await client.get(f"/api/{ada.id}/summary", headers=bearer(reader))
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"user_id": ada.id, "read_by": "reports-job", "as_client": True}
        # wrong scope: a writer's token on a read route (scope decided in the handler)
        writer = mint(scope="tasks:write")
        response = await client.get(f"/api/{ada.id}/summary", headers=bearer(writer))
        assert_refused(response, "insufficient_scope", 403)
        assert response.headers["www-authenticate"] == (
            'Bearer error="insufficient_scope", scope="tasks:read"'
        )
        # the router's scope and the route's both apply, the router's checked first
        admin_only = mint(scope="reports:admin")
        both = mint(scope="reports:admin tasks:read")
        person = await client.get("/admin/reports", headers=bearer(ada.access_token))
        assert_refused(person, "insufficient_scope", 403)
        assert person.headers["www-authenticate"].endswith('scope="reports:admin"')
        refused = await client.get("/admin/reports", headers=bearer(admin_only))
        assert_refused(refused, "insufficient_scope", 403)
        assert refused.headers["www-authenticate"].endswith('scope="tasks:read"')
        allowed = await client.get("/admin/reports", headers=bearer(both))
        assert allowed.status_code == 200 and allowed.json() == ["reports-job"]
        # the OpenAPI document names the bearer scheme on protected routes
        openapi = (await client.get("/openapi.json")).json()
        assert openapi["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


async def test_unknown_kid_single_flight(auth: Auth, ada: User) -> None:
    attacker = SigningKey.generate("ES256")
    claims = segment(ada.access_token, 1)
    clock = [0.0]
    app, keys = reports(auth, keys={"unknown_kid_cooldown": 30.0, "clock": lambda: clock[0]})
    async with serving(app) as client:
        clock[0] = 31.0  # past the cooldown that the start fetch began
        before = fetches("unknown_kid")
        tokens = [
            attacker.sign({"alg": "ES256", "kid": f"k-{index}", "typ": "at+jwt"}, claims)
            for index in range(20)
        ]
        responses = await asyncio.gather(
            *(client.get(f"/api/{ada.id}/summary", headers=bearer(t)) for t in tokens)
        )
        for response in responses:
            assert_refused(response, "token_invalid")
            assert "unknown key" in response.json()["detail"]
        # 20 forged kids at once, and again: one JWKS fetch between them (then the cooldown)
        assert fetches("unknown_kid") - before == 1
        again = await client.get(f"/api/{ada.id}/summary", headers=bearer(tokens[0]))
        assert_refused(again, "token_invalid")
        assert fetches("unknown_kid") - before == 1
        assert keys.ready


async def test_auth_down_stale_keys_served(
    tmp_path: Path, ada: User, mint: Callable[..., str]
) -> None:
    """Its own auth process, killed while the service runs (the module's one stays up)."""
    key_encryption_key = new_key_encryption_key()
    process = start_service(
        "auth_service", tmp_path / "auth", {"AUTH_KEY_ENCRYPTION_KEY": key_encryption_key}
    )
    try:
        down = Auth(process, key_encryption_key)
        user = register_user(process, "outage")
        app, keys = reports(down)
        async with serving(app) as client:
            assert (
                await client.get(f"/api/{user.id}/summary", headers=bearer(user.access_token))
            ).status_code == 200
            process.kill()
            assert not await keys.refresh("scheduled")  # the JWKS is unreachable
            assert keys.ready
            # cached, and a new token of the same key verified from the stale keys
            kid, alg, key = down.signing_key()
            fresh = jws.serialize_compact(
                {"alg": alg, "kid": kid, "typ": "at+jwt"},
                json.dumps({**segment(user.access_token, 1), "jti": uuid.uuid4().hex}).encode(),
                key,
                algorithms=[alg],
            )
            for token in (user.access_token, fresh):
                response = await client.get(f"/api/{user.id}/summary", headers=bearer(token))
                assert response.status_code == 200, response.text
            # an unknown kid is still refused, promptly, not an error
            forged = SigningKey.generate("ES256").sign(
                {"alg": "ES256", "kid": "unknown", "typ": "at+jwt"}, segment(user.access_token, 1)
            )
            response = await client.get(f"/api/{user.id}/summary", headers=bearer(forged))
            assert_refused(response, "token_invalid")
    finally:
        process.stop()


async def test_revoked_session(auth: Auth) -> None:
    """The session ends at the auth service; the package's revocation list refuses its access
    token (verified and cached before) within the propagation bound."""
    user = register_user(auth.process, "revoked")
    revocations = RevocationCache(f"{auth.process.url}/internal/revocations", interval=0.5)
    app, _ = reports(auth, revocations=revocations)
    async with serving(app) as client:
        summary = f"/api/{user.id}/summary"
        assert (await client.get(summary, headers=bearer(user.access_token))).status_code == 200
        async with httpx.AsyncClient(base_url=auth.process.url) as http:
            logout = await http.post("/auth/logout", json={"refresh_token": user.refresh_token})
        assert logout.status_code == 204

        async def refused() -> bool:
            response = await client.get(summary, headers=bearer(user.access_token))
            return response.status_code == 401

        await async_wait_until(refused, timeout=2.0, what="the revoked token to be refused")
        response = await client.get(summary, headers=bearer(user.access_token))
        assert_refused(response, "token_revoked")


def test_mint_uses_the_auth_key(auth: Auth, ada: User) -> None:
    """The minted tokens are the auth service's: its JWKS holds the kid they name."""
    kid, _, _ = auth.signing_key()
    jwks = httpx.get(auth.jwks_url).json()
    assert kid in {key["kid"] for key in jwks["keys"]}
