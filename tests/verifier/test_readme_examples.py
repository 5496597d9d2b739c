"""The package README's FastAPI and Litestar examples, run as written against a real auth
process (only the auth service's address, the issuer and the audience swapped for the test's)."""

from __future__ import annotations

import re
import sys
import types
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from tests.infra import ROOT, ServiceProcess
from tests.todo.conftest import register_user

README = (ROOT / "token_verifier" / "README.md").read_text()


def example(heading: str, auth: ServiceProcess) -> dict[str, Any]:
    section = README.split(f"## {heading}\n", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert code is not None, heading
    source = (
        code.group(1)
        .replace("http://auth:8001", auth.url)
        .replace("https://auth.example.com", "http://127.0.0.1:8000")
        .replace('audience="reports-api"', 'audience="todo-api"')
    )
    lines = [line for line in source.splitlines() if line.strip()]
    body = [line for line in lines if not line.startswith(("from ", "import "))]
    assert len(body) <= 12, "an example of about ten lines (imports aside)"
    # A module of its own, as a service's would be (Litestar looks handlers' modules up).
    module = types.ModuleType(f"readme_{heading.lower()}_example")
    sys.modules[module.__name__] = module
    exec(compile(source, f"README {heading}", "exec"), module.__dict__)  # noqa: S102
    return module.__dict__


async def check(client: httpx.AsyncClient | AsyncTestClient[Any], token: str) -> None:
    missing = await client.get("/reports")
    assert missing.status_code == 401 and missing.json()["code"] == "token_missing"
    assert missing.headers["www-authenticate"] == 'Bearer realm="reports-api"'
    # a person's genuine token: verified with the JWKS fetched at start, then refused for the
    # scope the route needs
    response = await client.get("/reports", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "insufficient_scope"
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="reports:read"'
    )
    forged = await client.get("/reports", headers={"Authorization": f"Bearer {token}x"})
    assert forged.status_code == 401 and forged.json()["code"] == "token_invalid"


@pytest.fixture(scope="module")
def token(auth_server: ServiceProcess) -> str:
    return register_user(auth_server, "readme").access_token


async def test_fastapi_example(auth_server: ServiceProcess, token: str) -> None:
    app = example("FastAPI", auth_server)["app"]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reports") as client:
            await check(client, token)


async def test_litestar_example(auth_server: ServiceProcess, token: str) -> None:
    app = example("Litestar", auth_server)["app"]
    async with AsyncTestClient(app=app) as client:
        await check(client, token)
