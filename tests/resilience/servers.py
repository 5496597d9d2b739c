"""Throwaway PostgreSQL and Redis servers of our own, to stop and start at will.

The machine's shared servers are never touched: an outage is simulated on a private cluster
(PostgreSQL, `initdb` into a temporary directory) or a private `redis-server` on a free port.
Either one that cannot be made to run skips its tests loudly (fails them in CI).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from tests.infra import free_port, run_coroutine, unavailable, wait_until


def _run_sync(coroutine_factory: Any) -> Any:
    """Run an asyncio coroutine to completion from any context (a running loop included)."""
    return run_coroutine(coroutine_factory)


# --- PostgreSQL -------------------------------------------------------------------------------


def _postgres_bin(name: str) -> str | None:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    return shutil.which(name)


class PrivatePostgres:
    """A PostgreSQL cluster of our own on a free loopback port.

    As root the cluster belongs to the `postgres` user (PostgreSQL refuses to run as root).
    """

    def __init__(self) -> None:
        initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            unavailable("initdb/pg_ctl not found: cannot run a private PostgreSQL")
        self._initdb, self._pg_ctl = str(initdb), str(pg_ctl)
        self.port = free_port()
        # Short path: the Unix socket lives here too and socket paths are limited to ~107 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="pgres-", dir="/tmp"))
        self.data = self.root / "data"
        self._as: list[str] = []
        try:
            if os.geteuid() == 0:
                try:
                    owner = pwd.getpwnam("postgres")
                except KeyError:
                    unavailable("running as root and no `postgres` user to own a private cluster")
                os.chown(self.root, owner.pw_uid, owner.pw_gid)
                self._as = ["runuser", "-u", "postgres", "--"]
            self._command(
                self._initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"
            )
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def _command(self, *args: str) -> None:
        done = subprocess.run(
            [*self._as, *args], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            unavailable(f"private PostgreSQL: {args[0]} failed: {done.stderr.strip()[-500:]}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=300 -c full_page_writes=off"
        )
        self._command(
            self._pg_ctl,
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every connection and shuts down cleanly; `immediate` is a crash."""
        self._command(self._pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        self.execute("postgres", f'CREATE DATABASE "{name}"')
        return self.url(name)

    def execute(self, database: str, sql: str) -> None:
        self.fetch(database, sql)

    def fetch(self, database: str, sql: str) -> list[tuple[Any, ...]]:
        import asyncpg

        async def run() -> list[tuple[Any, ...]]:
            conn = await asyncpg.connect(
                f"postgresql://postgres@127.0.0.1:{self.port}/{database}", timeout=5
            )
            try:
                return [tuple(row) for row in await conn.fetch(sql)]
            finally:
                await conn.close()

        return list(_run_sync(run))

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            subprocess.run(
                [*self._as, self._pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=30,
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


def query_postgres(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of one query on a database named by its SQLAlchemy URL (the shared server's too)."""
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")

    async def run() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    return list(_run_sync(run))


# --- Redis ------------------------------------------------------------------------------------


class PrivateRedis:
    """A `redis-server` of our own on a free port, which can be killed and started again.

    It keeps an append-only file fsynced before every reply (`appendfsync always`), as a
    production Redis holding sessions would: a write it acknowledged survives a SIGKILL.
    """

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server not found: cannot run a private Redis")
        self._binary = str(binary)
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="redis-", dir="/tmp"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            decode_responses=True,
            socket_timeout=2,
            socket_connect_timeout=2,
        )

    def start(self) -> None:
        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--daemonize",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

        def answers() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                unavailable(f"private redis-server exited with {self.proc.returncode}")
            client = self.client()
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False
            finally:
                client.close()

        wait_until(answers, timeout=15, what=f"the private Redis on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last save: only what was fsynced survives."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=15)

    def destroy(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.destroy()
