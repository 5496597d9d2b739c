"""An auth service per storage mode: SQLite + SQL session store, PostgreSQL + Redis store."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from auth_service.__main__ import MIGRATIONS
from auth_service.app import create_app
from auth_service.config import Settings
from kit import database
from kit.app import ServedApp
from tests.infra import RedisSpace

STRONG_PASSWORD = "correct horse battery staple"


def unique_email(label: str = "user") -> str:
    return f"{label}-{secrets.token_hex(4)}@example.com"


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def auth_settings(
    storage: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Settings:
    """Migrated storage for one mode, shared by the tests of that mode (emails are unique)."""
    if storage == "sqlite":
        path: Path = tmp_path_factory.mktemp("auth-sqlite") / "auth.db"
        url = f"sqlite+aiosqlite:///{path}"
        redis_url, prefix = None, "auth:"
    else:
        url = request.getfixturevalue("postgres_url")
        space: RedisSpace = request.getfixturevalue("redis_space")
        redis_url, prefix = space.url, space.prefix + "auth:"
    database.upgrade(url, MIGRATIONS)
    return Settings(
        database_url=url,
        redis_url=redis_url,
        redis_prefix=prefix,
        key_encryption_key=secrets.token_bytes(32),
        login_failure_limit="1000/minute",
    )


@pytest.fixture
def auth_app(auth_settings: Settings) -> ServedApp:
    return create_app(auth_settings)


@pytest.fixture
async def client(auth_app: ServedApp) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=auth_app) as test_client:
        yield test_client


@pytest.fixture
def settings_with(auth_settings: Settings) -> Callable[..., Settings]:
    """The mode's settings with some fields changed (a differently configured replica)."""

    def make(**changes: Any) -> Settings:
        return dataclasses.replace(auth_settings, **changes)

    return make
