"""A todo service per storage mode, verifying tokens minted by a real auth process."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from kit import database
from kit.app import ServedApp
from tests.infra import ServiceProcess, fresh_postgres_database
from todo_service.__main__ import MIGRATIONS
from todo_service.app import create_app
from todo_service.config import Settings

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def todo_postgres_url() -> Iterator[str]:
    with fresh_postgres_database("todo") as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def todo_settings(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    auth_server: ServiceProcess,
) -> Settings:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("todo-sqlite") / "todo.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        url = str(request.getfixturevalue("todo_postgres_url"))
    database.upgrade(url, MIGRATIONS)
    return Settings(database_url=url, jwks_url=f"{auth_server.url}/.well-known/jwks.json")


@pytest.fixture
def todo_app(todo_settings: Settings) -> ServedApp:
    return create_app(todo_settings)


@pytest.fixture
async def todo(todo_app: ServedApp) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=todo_app) as client:
        yield client


class User:
    """A user registered on the real auth service, with a fresh access token."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.id: str = body["user"]["id"]
        self.access_token: str = body["access_token"]
        self.refresh_token: str = body["refresh_token"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    @property
    def tasks(self) -> str:
        return f"/api/{self.id}/tasks"


def register_user(auth: ServiceProcess, label: str = "user") -> User:
    email = f"{label}-{secrets.token_hex(4)}@example.com"
    response = httpx.post(f"{auth.url}/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return User(response.json())


@pytest.fixture
def alice(auth_server: ServiceProcess) -> User:
    return register_user(auth_server, "alice")


@pytest.fixture
def bob(auth_server: ServiceProcess) -> User:
    return register_user(auth_server, "bob")
