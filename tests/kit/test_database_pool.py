"""The engines' pools under more concurrent work than they have connections.

PostgreSQL: waves of more concurrent queries than the pool holds open at most POOL_SIZE
sessions in all, never one per wave (an overflow connection used to be closed on return and
opened again by the next wave: 100-370 new sessions in 5 s of the benchmark), counted by the
server itself. SQLite: one connection, whatever the load."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy.pool import QueuePool

from kit.database import POOL_SIZE, create_engine, single_statement_reads
from tests.infra import PG_ADMIN_DSN, async_wait_until, fresh_postgres_database

WAVES = 4
CONCURRENT = POOL_SIZE * 3


@pytest.fixture
def database() -> Iterator[tuple[str, str]]:
    """A fresh database: its SQLAlchemy URL and its name."""
    with fresh_postgres_database("pool") as url:
        yield url, url.rsplit("/", 1)[1]


async def sessions_opened(name: str) -> int:
    """Sessions the server has established to `name` so far (pg_stat_database, PostgreSQL 14+)."""
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        value = await conn.fetchval(
            "SELECT sessions FROM pg_stat_database WHERE datname = $1", name
        )
    finally:
        await conn.close()
    return int(value or 0)


@pytest.mark.parametrize("autocommit", [False, True], ids=["transactional", "autocommit"])
async def test_waves_above_the_pool_size_reuse_the_same_connections(
    database: tuple[str, str], autocommit: bool
) -> None:
    url, name = database
    engine = create_engine(url)
    reads = single_statement_reads(engine) if autocommit else engine
    before = await sessions_opened(name)

    async def one(number: int) -> int:
        async with reads.connect() as conn:
            # Long enough that the whole wave is in flight at once.
            result = await conn.execute(
                text("SELECT CAST(:n AS integer) FROM pg_sleep(0.05)"), {"n": number}
            )
            return int(result.scalar_one())

    try:
        for wave in range(WAVES):
            answers = await asyncio.gather(*(one(wave * 1000 + i) for i in range(CONCURRENT)))
            assert answers == [wave * 1000 + i for i in range(CONCURRENT)]
        pool = engine.pool
        assert isinstance(pool, QueuePool) and pool.checkedout() == 0
    finally:
        await engine.dispose()

    async def counted() -> bool:
        return await sessions_opened(name) > before

    # A backend reports its session to the statistics on its own time.
    await async_wait_until(counted, timeout=10, what="the server to count the pool's sessions")
    opened = await sessions_opened(name) - before
    assert 0 < opened <= POOL_SIZE, f"{opened} sessions for {WAVES} waves of {CONCURRENT}"


async def test_sqlite_transactions_queue_for_its_one_connection(tmp_path: Path) -> None:
    """Every SQLite transaction begins IMMEDIATE, so they run one at a time anyway; with one
    connection they wait in the pool, in order, instead of polling the lock with SQLite's
    sleeping busy handler on connections of their own."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    opened: list[object] = []
    event.listen(engine.sync_engine, "connect", lambda connection, _: opened.append(connection))

    async def write(number: int) -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": number})
            await asyncio.sleep(0.01)  # the transaction stays open while the others arrive

    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (n INTEGER NOT NULL)"))
        await asyncio.gather(*(write(number) for number in range(CONCURRENT)))
        async with engine.connect() as conn:
            stored = sorted((await conn.execute(text("SELECT n FROM t"))).scalars())
    finally:
        await engine.dispose()
    assert stored == list(range(CONCURRENT))
    assert len(opened) == 1
