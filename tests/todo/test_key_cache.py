"""The todo service against a real auth process: key rotation, auth outage, forged kids.

Each test runs its own auth process, so rotating or stopping it disturbs no other test.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from kit import database
from tests.infra import (
    ServiceProcess,
    async_wait_until,
    new_key_encryption_key,
    run_cli,
    start_service,
)
from tests.todo.conftest import User, register_user
from todo_service.__main__ import MIGRATIONS
from todo_service.app import create_app
from todo_service.config import Settings

Client = AsyncTestClient[Any]


def jwks_fetches() -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "token_verifier_jwks_fetches":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


@pytest.fixture
def own_auth(tmp_path: Path) -> Iterator[tuple[ServiceProcess, dict[str, str]]]:
    env = {"AUTH_KEY_ENCRYPTION_KEY": new_key_encryption_key()}
    auth = start_service("auth_service", tmp_path / "auth", env)
    yield auth, env
    auth.stop()


@pytest.fixture
async def todo_client(
    own_auth: tuple[ServiceProcess, dict[str, str]], tmp_path: Path
) -> AsyncIterator[Client]:
    auth, _ = own_auth
    url = f"sqlite+aiosqlite:///{tmp_path / 'todo.db'}"
    database.upgrade(url, MIGRATIONS)
    settings = Settings(database_url=url, jwks_url=f"{auth.url}/.well-known/jwks.json")
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


async def test_rotation_needs_at_most_one_fetch_and_old_tokens_stay_valid(
    own_auth: tuple[ServiceProcess, dict[str, str]], todo_client: Client
) -> None:
    auth, env = own_auth
    before_rotation = register_user(auth, "rotation")
    old_kid = kid_of(before_rotation.access_token)
    assert (
        await todo_client.get(before_rotation.tasks, headers=before_rotation.headers)
    ).status_code == 200
    fetches = jwks_fetches()

    rotated = run_cli("auth_service", "rotate-keys", "--force", env=env, cwd=auth.workdir)
    assert rotated.returncode == 0, rotated.stderr

    fresh: list[User] = []

    async def new_kid_in_use() -> bool:
        user = register_user(auth, "after")
        fresh.append(user)
        return kid_of(user.access_token) != old_kid

    await async_wait_until(
        new_kid_in_use, timeout=60, what="the auth process to sign with the new key"
    )
    after_rotation = fresh[-1]
    new_response = await todo_client.get(after_rotation.tasks, headers=after_rotation.headers)
    assert new_response.status_code == 200, new_response.text
    old_response = await todo_client.get(before_rotation.tasks, headers=before_rotation.headers)
    assert old_response.status_code == 200
    assert jwks_fetches() - fetches <= 1


async def test_auth_outage_does_not_stop_verification(
    own_auth: tuple[ServiceProcess, dict[str, str]], todo_client: Client
) -> None:
    auth, _ = own_auth
    user = register_user(auth, "outage")
    auth.stop()
    assert auth.proc is not None and auth.proc.poll() is not None  # really gone
    listed = await todo_client.get(user.tasks, headers=user.headers)
    assert listed.status_code == 200
    created = await todo_client.post(user.tasks, json={"title": "offline"}, headers=user.headers)
    assert created.status_code == 201
    assert (await todo_client.get("/health/ready")).status_code == 200


def forged(kid: str) -> str:
    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    header = segment({"alg": "ES256", "kid": kid, "typ": "at+jwt"})
    payload = segment({"sub": "x", "iss": "http://127.0.0.1:8000", "aud": "todo-api"})
    signature = base64.urlsafe_b64encode(secrets.token_bytes(64)).decode().rstrip("=")
    return f"{header}.{payload}.{signature}"


async def test_a_flood_of_unknown_kids_costs_at_most_one_fetch(
    own_auth: tuple[ServiceProcess, dict[str, str]], todo_client: Client
) -> None:
    auth, _ = own_auth
    user = register_user(auth, "flood")
    fetches = jwks_fetches()
    for _ in range(1000):
        response = await todo_client.get(
            user.tasks, headers={"Authorization": f"Bearer {forged(secrets.token_hex(8))}"}
        )
        assert response.status_code == 401
        assert response.json()["code"] == "token_invalid"
    assert jwks_fetches() - fetches <= 1
    # The real token still works.
    assert (await todo_client.get(user.tasks, headers=user.headers)).status_code == 200
