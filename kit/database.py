"""SQL engines and migrations for the services that own a database (auth, todo).

SQLite is the embedded default, so it gets what a server database gives for free: WAL, a busy
timeout and write transactions that take the lock up front (BEGIN IMMEDIATE) — otherwise two
concurrent read-then-write transactions deadlock and one fails with "database is locked".
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import structlog
from advanced_alchemy.base import ModelProtocol
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from alembic import command, context
from alembic.config import Config
from litestar import Request, Response
from litestar.types import ExceptionHandlersMap
from sqlalchemy import MetaData, Select, event, make_url, pool
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

from kit.problems import dependency_down, dependency_down_handlers, unexpected

SQLITE_BUSY_TIMEOUT_MS = 30_000
log = structlog.get_logger("database")
# PostgreSQL connections each process keeps (see create_engine).
POOL_SIZE = 30
ModelT = TypeVar("ModelT", bound=ModelProtocol)


class Repository(SQLAlchemyAsyncRepository[ModelT]):
    """An advanced-alchemy repository whose database errors keep their own types.

    Wrapped, a lost connection comes out as advanced-alchemy's IntegrityError (a 409 "email
    taken" at registration, a 500 elsewhere) instead of the 503 its real type maps to.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("wrap_exceptions", False)
        super().__init__(**kwargs)


# SQLSTATE classes that mean "the server is not there for you right now", not "your query is
# wrong": 08 connection exception, 53 insufficient resources, 57 operator intervention
# (e.g. 57P01 admin shutdown while a connection was pooled).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")


def _sqlstate(exc: BaseException) -> str:
    for source in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None)):
        for name in ("sqlstate", "pgcode"):
            value = getattr(source, name, None)
            if isinstance(value, str):
                return value
    return ""


def _on_database_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A database error that says the server went away is a 503; any other is a bug (500)."""
    invalidated = bool(getattr(exc, "connection_invalidated", False))
    if invalidated or _sqlstate(exc).startswith(_UNAVAILABLE_SQLSTATE_CLASSES):
        return dependency_down(request, exc)
    return unexpected(request, exc)


def database_down_handlers() -> ExceptionHandlersMap:
    """503 `upstream_unavailable` whenever the database cannot be reached, whatever layer
    notices: SQLAlchemy, the pool, the driver, or the socket underneath."""
    handlers = dependency_down_handlers(
        OperationalError, InterfaceError, PoolTimeoutError, ConnectionError, TimeoutError
    )
    handlers[DBAPIError] = _on_database_error
    return handlers


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def create_engine(url: str, *, for_migrations: bool = False) -> AsyncEngine:
    if is_sqlite(url):
        _prepare_sqlite_file(url)
        # One connection: every SQLite transaction here begins IMMEDIATE (takes the write lock),
        # so they run one at a time whatever the pool; with several connections the waiting
        # ones poll the lock with SQLite's busy handler, which sleeps up to 100 ms between
        # tries and favours no one (refresh p99 1.8-2.5 s at 32 connections in the benchmark).
        # With one, they queue for it in the pool instead: p99 136-149 ms, same rate.
        engine = create_async_engine(
            url,
            pool_size=1,
            max_overflow=0,
            pool_timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _make_sqlite_transactional(engine)
        return engine
    # A fixed pool, no overflow: an overflow connection is closed as soon as it is returned
    # while the pool is full, so a load hovering above the pool size opened and closed
    # connections all the time (10 + 20 overflow: 100-370 new PostgreSQL sessions in 5 s of the
    # benchmark, each a backend fork). The same 30 as a pool are opened as needed and kept.
    # Not fewer: beyond the pool a request waits, and SQLAlchemy's asyncio queue lets a newcomer
    # take a returned connection before the waiter it woke (10 without overflow: p99 330-820 ms
    # at 32 connections, against 73-109 ms with 30).
    options: dict[str, Any] = {
        "pool_size": POOL_SIZE,
        "max_overflow": 0,
        "pool_timeout": 5,
        "pool_recycle": 1800,
        "connect_args": {"timeout": 5, "command_timeout": 15},
    }
    if for_migrations:
        options = {"poolclass": pool.NullPool}
    return create_async_engine(url, **options)


def single_statement_reads(engine: AsyncEngine) -> AsyncEngine:
    """The engine for a lone SELECT on a hot path. On PostgreSQL its connections run in
    autocommit, so the statement is not wrapped in BEGIN … ROLLBACK: one round trip instead of
    three. SQLite keeps the transaction handling below (its driver setting must not change)."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def json_column(value: Any) -> Any:
    """A JSON column's value as a HotRead hands it: decoded by SQLAlchemy on SQLite, the
    server's text on asyncpg (the driver leaves json to its caller)."""
    return json.loads(value) if isinstance(value, str) else value


class HotRead:
    """A lone SELECT on a hot path (every login, every task list pays for one), run as cheaply
    as the driver allows: `await HotRead(statement).first(engine, name=value)` gives the first
    row or None, `.all(...)` every row.

    On asyncpg it runs on the driver connection beneath a pooled SQLAlchemy one: no BEGIN
    (asyncpg opens no transaction for it) and none of SQLAlchemy's per-statement work, which was
    0.4-0.7 ms of a login's 3.1-3.4 ms of event-loop CPU under load in the benchmark. Should
    the driver raise (a timeout aside: that is a 503 as it is), the statement runs again
    through SQLAlchemy, which judges the failure as for any other query: a dead connection is
    invalidated and surfaces as a 503, a faulty statement as a 500. Any other driver, SQLite
    included, takes SQLAlchemy's path alone.
    """

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self._statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {}

    async def first(self, engine: AsyncEngine, **params: Any) -> Sequence[Any] | None:
        rows = await self._run(engine, params, one=True)
        return rows[0] if rows else None

    async def all(self, engine: AsyncEngine, **params: Any) -> Sequence[Sequence[Any]]:
        return await self._run(engine, params, one=False)

    async def _run(
        self, engine: AsyncEngine, params: dict[str, Any], *, one: bool
    ) -> Sequence[Sequence[Any]]:
        async with engine.connect() as connection:
            if engine.dialect.driver == "asyncpg":
                sql, names, defaults = self._for(engine)
                driver = (await connection.get_raw_connection()).driver_connection
                assert driver is not None  # a checked-out connection has its driver's
                values = {**defaults, **params}
                arguments = [values[name] for name in names]
                try:
                    if one:
                        row = await driver.fetchrow(sql, *arguments)
                        return [] if row is None else [row]
                    rows: Sequence[Sequence[Any]] = await driver.fetch(sql, *arguments)
                    return rows
                except TimeoutError:  # a 503 as it is; run again, it would wait as long again
                    raise
                except Exception as error:  # judged by SQLAlchemy below, which raises its own
                    log.info("hot_read_replayed", error=type(error).__name__)
            result = await connection.execute(self._statement, params)
            if one:
                found = result.first()
                return [] if found is None else [found]
            return result.all()

    def _for(self, engine: AsyncEngine) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        """The driver's SQL, its parameters in order, and the values the statement carries
        itself (a literal in `func.f(1.0)` is a bound parameter too)."""
        found = self._compiled.get(engine.dialect.name)
        if found is None:
            compiled = self._statement.compile(dialect=engine.dialect)
            found = (str(compiled), tuple(compiled.positiontup or ()), dict(compiled.params))
            self._compiled[engine.dialect.name] = found
        return found


def _make_sqlite_transactional(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so that "begin" below is the only BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str, script_location: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(url: str, script_location: Path) -> None:
    """Apply every migration of one service's database (the `migrate` command).

    Runs in a thread of its own: alembic's env runs its own event loop, which must not be
    nested in a caller's running loop (tests, app start-up).
    """
    failure: list[BaseException] = []

    def run() -> None:
        try:
            command.upgrade(alembic_config(url, script_location), "head")
        except BaseException as error:  # re-raised in the caller's thread
            failure.append(error)

    worker = threading.Thread(target=run, name="migrations")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]


def run_env(metadata: MetaData) -> None:
    """The body of a service's migrations/env.py: online migrations over an async engine."""
    url = context.config.get_main_option("sqlalchemy.url") or ""

    def migrate(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=is_sqlite(url),
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_engine(url, for_migrations=True)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(migrate)
                await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(main())
