"""HotRead: a lone SELECT that runs on the asyncpg driver directly, and on SQLAlchemy's own path
whenever the driver fails, so that a failure comes out as the same SQLAlchemy error a plain
query would raise (a dead connection invalidated, a faulty statement not), on both storage
paths; a timeout is not run a second time."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import Column, MetaData, String, Table, bindparam, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.types import Uuid
from structlog.testing import capture_logs

from kit.database import HotRead, create_engine, single_statement_reads
from tests.infra import PG_ADMIN_DSN, async_wait_until, fresh_postgres_database

METADATA = MetaData()
PEOPLE = Table(
    "people",
    METADATA,
    Column("id", Uuid, primary_key=True),
    Column("name", String(50), nullable=False, unique=True),
    Column("note", String(200)),
)
BY_NAME = HotRead(
    select(PEOPLE.c.id, PEOPLE.c.name, PEOPLE.c.note).where(PEOPLE.c.name == bindparam("name"))
)
# Selects a column the table does not have: a faulty statement, the server's error to report.
MISSING = Table("people", MetaData(), Column("id", Uuid), Column("absent", String))
FAULTY = HotRead(select(MISSING.c.absent).where(MISSING.c.id == bindparam("id")))
ADA = uuid.uuid4()


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'hot.db'}"
        return
    with fresh_postgres_database("hotread") as postgres:
        yield postgres


@asynccontextmanager
async def seeded(url: str, **engine_options: object) -> AsyncIterator[AsyncEngine]:
    """An engine on `url` whose database holds the table and Ada; its autocommit reads."""
    engine = create_async_engine(url, **engine_options) if engine_options else create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
        await conn.execute(PEOPLE.insert(), [{"id": ADA, "name": "ada", "note": None}])
    try:
        yield single_statement_reads(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def engine(url: str) -> AsyncIterator[AsyncEngine]:
    async with seeded(url) as engine:
        yield engine


async def test_first_row_or_none_with_the_columns_typed_as_sqlalchemy_types_them(
    engine: AsyncEngine,
) -> None:
    row = await BY_NAME.first(engine, name="ada")
    assert row is not None
    person_id, name, note = row
    assert isinstance(person_id, uuid.UUID) and person_id == ADA and str(person_id) == str(ADA)
    assert (name, note) == ("ada", None)
    assert await BY_NAME.first(engine, name="nobody") is None
    # A parameter is a value, never SQL.
    assert await BY_NAME.first(engine, name="ada' OR '1'='1") is None


EVERYONE = HotRead(
    select(PEOPLE.c.name, PEOPLE.c.note)
    .where(PEOPLE.c.name >= bindparam("from"))
    .order_by(PEOPLE.c.name)
    .limit(bindparam("limit"))
)


async def test_all_rows_in_order_or_none(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            PEOPLE.insert(),
            [{"id": uuid.uuid4(), "name": name, "note": name.upper()} for name in ("bo", "cy")],
        )
    rows = await EVERYONE.all(engine, **{"from": "b", "limit": 10})
    assert [tuple(row) for row in rows] == [("bo", "BO"), ("cy", "CY")]
    rows = await EVERYONE.all(engine, **{"from": "a", "limit": 2})
    assert [tuple(row) for row in rows] == [("ada", None), ("bo", "BO")]
    assert list(await EVERYONE.all(engine, **{"from": "z", "limit": 10})) == []
    with pytest.raises(DBAPIError):
        await FAULTY.all(engine, id=ADA)


async def test_values_the_statement_carries_itself_are_sent_with_the_callers(
    engine: AsyncEngine,
) -> None:
    # LIMIT and the literal are bound parameters of their own beside the caller's `name`.
    carrying = HotRead(
        select(PEOPLE.c.name, func.upper("x")).where(PEOPLE.c.name == bindparam("name")).limit(1)
    )
    with capture_logs() as logs:
        assert tuple(await carrying.first(engine, name="ada") or ()) == ("ada", "X")
    assert not [entry for entry in logs if entry["event"] == "hot_read_replayed"]


async def test_a_faulty_statement_raises_sqlalchemy_error_not_invalidated(
    engine: AsyncEngine,
) -> None:
    with pytest.raises(DBAPIError) as raised:
        await FAULTY.first(engine, id=ADA)
    assert not raised.value.connection_invalidated
    assert await BY_NAME.first(engine, name="ada") is not None


@pytest.fixture
async def postgres_engine() -> AsyncIterator[tuple[AsyncEngine, str]]:
    """A PostgreSQL engine (autocommit reads) on a fresh database, and the database's name."""
    with fresh_postgres_database("hotcut") as url:
        async with seeded(url) as engine:
            yield engine, url.rsplit("/", 1)[1]


async def _backends(admin: asyncpg.Connection, name: str) -> int:
    return int(
        await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name)
    )


async def test_a_connection_cut_by_the_server_is_invalidated_then_replaced(
    postgres_engine: tuple[AsyncEngine, str],
) -> None:
    engine, name = postgres_engine
    assert await BY_NAME.first(engine, name="ada") is not None  # a connection is pooled
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    try:
        cut = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
            name,
        )
        assert cut >= 1

        async def gone() -> bool:
            return await _backends(admin, name) == 0

        await async_wait_until(gone, timeout=10, what="the cut backends to exit")
    finally:
        await admin.close()
    # The driver fails on the dead connection; SQLAlchemy's replay says it was a disconnect
    # (the handlers' 503) and drops it, never a bare driver error (a 500) ...
    with pytest.raises(DBAPIError) as raised:
        await BY_NAME.first(engine, name="ada")
    assert raised.value.connection_invalidated, raised.value
    # ... and the pool opens a new one for the next read.
    row = await BY_NAME.first(engine, name="ada")
    assert row is not None and row[0] == ADA


SLOW = HotRead(select(PEOPLE.c.name, func.pg_sleep(1.0)).where(PEOPLE.c.name == bindparam("name")))


async def test_a_timeout_is_raised_as_it_is_and_not_run_again() -> None:
    with fresh_postgres_database("hotslow") as url:
        async with seeded(url, connect_args={"command_timeout": 0.2}) as engine:
            with capture_logs() as logs, pytest.raises(TimeoutError):
                await SLOW.first(engine, name="ada")
            assert not [entry for entry in logs if entry["event"] == "hot_read_replayed"]
            # The connection it ran on is still good for the next read.
            assert await BY_NAME.first(engine, name="ada") is not None
