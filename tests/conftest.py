"""Fixtures shared by every test folder: real PostgreSQL, Redis and a scratch directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra import RedisSpace, fresh_postgres_database, fresh_redis_prefix


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
