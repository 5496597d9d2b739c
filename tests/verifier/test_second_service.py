"""How any internal service protects itself with the verifier — the README's example, run
against a real auth process."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from litestar import Litestar, Request, get
from litestar.testing import AsyncTestClient

from tests.infra import ServiceProcess
from token_verifier import JwksCache, TokenVerifier, VerifiedClaims
from token_verifier.litestar import EXCEPTION_HANDLERS, bearer_auth

PASSWORD = "correct horse battery staple"


def reports_app(jwks_url: str) -> Litestar:
    # --- the README example: a second service in ten lines ---------------------------------
    keys = JwksCache(jwks_url)
    verifier = TokenVerifier(keys, issuer="http://127.0.0.1:8000", audience="todo-api")

    @get("/reports")
    async def reports(request: Request[VerifiedClaims, Any, Any]) -> dict[str, str]:
        return {"owner": request.user.sub}

    return Litestar(
        route_handlers=[reports],
        middleware=[bearer_auth(verifier, exclude=["^/health"])],
        exception_handlers=EXCEPTION_HANDLERS,
        on_startup=[keys.start],
        on_shutdown=[keys.close],
    )
    # -----------------------------------------------------------------------------------------


async def test_a_second_service_accepts_platform_tokens(auth_server: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=auth_server.url) as auth:
        response = await auth.post(
            "/auth/register",
            json={"email": f"reports-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD},
        )
    registered = response.json()
    app = reports_app(f"{auth_server.url}/.well-known/jwks.json")
    async with AsyncTestClient(app=app) as client:
        ok = await client.get(
            "/reports", headers={"Authorization": f"Bearer {registered['access_token']}"}
        )
        assert ok.status_code == 200
        assert ok.json() == {"owner": registered["user"]["id"]}
        refused = await client.get("/reports", headers={"Authorization": "Bearer forged.x.y"})
        assert refused.status_code == 401
        assert refused.json()["code"] == "token_invalid"
        assert refused.headers["www-authenticate"].startswith('Bearer realm="todo-api", error=')
        assert (await client.get("/reports")).json()["code"] == "token_missing"
