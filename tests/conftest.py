"""Fixtures shared by every test folder: real PostgreSQL, Redis and a scratch directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra import (
    RedisSpace,
    ServiceProcess,
    fresh_postgres_database,
    fresh_redis_prefix,
    new_key_encryption_key,
    start_service,
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database created for this test session and dropped after it."""
    with fresh_postgres_database("session") as url:
        yield url


@pytest.fixture(scope="session")
def redis_space() -> Iterator[RedisSpace]:
    """A Redis key prefix owned by this test session, emptied after it."""
    with fresh_redis_prefix("session") as space:
        yield space


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch directory that plays the role of a service's working directory (`.data/`)."""
    return tmp_path


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A real auth service process (embedded storage) that mints tokens for other services."""
    workdir = tmp_path_factory.mktemp("auth-server")
    env = {
        "AUTH_KEY_ENCRYPTION_KEY": new_key_encryption_key(),
        "AUTH_LOGIN_FAILURE_LIMIT": "1000/minute",
    }
    auth = start_service("auth_service", workdir, env)
    yield auth
    auth.stop()
