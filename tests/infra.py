"""Real servers for tests: throwaway PostgreSQL databases, Redis key prefixes, service processes.

Outside CI a server that cannot be reached skips its tests loudly; with CI=true it fails them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

PG_ADMIN_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Skip loudly, or fail in CI where every server must be there."""
    if IN_CI:
        pytest.fail(f"required server unavailable in CI: {reason}")
    print(f"\n*** SKIPPING: {reason} ***", file=sys.stderr)
    pytest.skip(f"SERVER UNAVAILABLE: {reason}")


def wait_until(
    condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.02
) -> None:
    """Poll `condition` until true or fail after `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


async def async_wait_until(
    condition: Callable[[], object], *, timeout: float, what: str, every: float = 0.02
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)


# --- PostgreSQL -------------------------------------------------------------------------------


def run_coroutine(coroutine_factory: Callable[[], Any]) -> Any:
    """Run `coroutine_factory()` to completion from any context (a running loop included),
    in a thread with a loop of its own."""
    result: list[Any] = []
    failure: list[BaseException] = []

    def in_thread() -> None:
        try:
            result.append(asyncio.run(coroutine_factory()))
        except BaseException as error:
            failure.append(error)

    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return result[0]


def _admin(sql: str) -> None:
    """One statement on the admin database, from any context (a running loop included)."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_coroutine(run)


def execute_sql(database_url: str, sql: str) -> None:
    """One statement on a service's database (SQLite file or PostgreSQL), from a test."""
    if database_url.startswith("sqlite"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(database_url.split(":///", 1)[1])) as db:
            db.execute(sql)
            db.commit()
        return
    import asyncpg

    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")

    async def run() -> None:
        conn = await asyncpg.connect(dsn, timeout=3)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_coroutine(run)


@contextlib.contextmanager
def fresh_postgres_database(label: str) -> Iterator[str]:
    """Create an empty database, yield its SQLAlchemy URL, drop it afterwards."""
    name = f"t_{label}_{secrets.token_hex(4)}"
    try:
        _admin(f'CREATE DATABASE "{name}"')
    except Exception as error:  # any failure to reach the server means: not available
        unavailable(f"PostgreSQL at {PG_ADMIN_DSN}: {type(error).__name__}: {error}")
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        with contextlib.suppress(Exception):
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- Redis ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisSpace:
    url: str
    prefix: str


@contextlib.contextmanager
def fresh_redis_prefix(label: str) -> Iterator[RedisSpace]:
    """A key prefix of our own on the shared Redis; every key under it is deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        unavailable(f"Redis at {REDIS_URL}: {error}")
    prefix = f"t:{label}:{secrets.token_hex(4)}:"
    try:
        yield RedisSpace(REDIS_URL, prefix)
    finally:
        with contextlib.suppress(redis.RedisError):
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        client.close()


# --- Processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServiceProcess:
    """One service (`python -m <module> serve`, or `argv` when given) on a loopback port, with
    its log in a file. `<MODULE>_HOST` and `_PORT` are set from the module's name."""

    module: str
    env: Mapping[str, str]
    workdir: Path
    port: int = field(default_factory=free_port)
    name: str = ""
    proc: subprocess.Popen[bytes] | None = None
    argv: Sequence[str] = ()
    cwd: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name or self.module}-{self.port}.log"

    def start(self, *, ready_timeout: float = 30.0, wait: bool = True) -> ServiceProcess:
        prefix = self.module.split("_")[0].upper() if self.module != "gateway" else "GATEWAY"
        env = {
            **os.environ,
            f"{prefix}_HOST": "127.0.0.1",
            f"{prefix}_PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
            **self.env,
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            list(self.argv) or [sys.executable, "-m", self.module, "serve"],
            cwd=self.cwd or self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if wait:
            self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.module} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                return httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=timeout, what=f"{self.module} on port {self.port} to be live")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=15)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


def run_cli(
    module: str, *args: str, env: Mapping[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `python -m module args…` to completion (migrations, key rotation, config checks)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def new_key_encryption_key() -> str:
    """A fresh AUTH_KEY_ENCRYPTION_KEY (32 random bytes, base64url)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def start_service(
    module: str, workdir: Path, env: Mapping[str, str], **kwargs: Any
) -> ServiceProcess:
    """Apply the service's migrations (when it has any), then start it and wait until live."""
    workdir.mkdir(parents=True, exist_ok=True)
    if module in ("auth_service", "todo_service"):
        migrated = run_cli(module, "migrate", env=env, cwd=workdir)
        assert migrated.returncode == 0, migrated.stderr
    return ServiceProcess(module, env=env, workdir=workdir, **kwargs).start()


TODO_CLIENT = "todo-service"


def todo_client(env: Mapping[str, str], workdir: Path) -> dict[str, str]:
    """The todo service's own client (account events), as `make run` provisions it: made the
    first time, given a new secret when the stack starts again on the same databases."""
    made = run_cli(
        "auth_service", "clients", "create", TODO_CLIENT, "--scope", "events:read", "--secret",
        "--json", env=env, cwd=workdir,
    )  # fmt: skip
    if made.returncode != 0 and "exists already" in made.stderr:
        made = run_cli(
            "auth_service", "clients", "rotate-secret", TODO_CLIENT, "--overlap", "0", "--json",
            env=env, cwd=workdir,
        )  # fmt: skip
    assert made.returncode == 0, made.stderr
    secret = json.loads(made.stdout)["client_secret"]
    return {"TODO_CLIENT_ID": TODO_CLIENT, "TODO_CLIENT_SECRET": secret}


@dataclass
class Stack:
    """The three services as real processes: replicas of auth and todo behind one gateway."""

    gateway: ServiceProcess
    auths: list[ServiceProcess]
    todos: list[ServiceProcess]
    env: dict[str, str]
    workdir: Path

    @property
    def url(self) -> str:
        return self.gateway.url

    def processes(self) -> list[ServiceProcess]:
        return [self.gateway, *self.todos, *self.auths]

    def stop(self) -> None:
        for process in self.processes():
            process.stop()


def start_stack(
    workdir: Path,
    env: Mapping[str, str] | None = None,
    *,
    auth_replicas: int = 1,
    todo_replicas: int = 1,
    gateway_port: int | None = None,
) -> Stack:
    """Start auth replicas, then todo replicas (keys from the first auth), then the gateway
    over all of them. Embedded storage in `workdir` unless `env` names servers."""
    env = {"AUTH_KEY_ENCRYPTION_KEY": new_key_encryption_key(), **(env or {})}
    auths = [
        start_service("auth_service", workdir, env, name=f"auth{i}")
        if i == 0
        else ServiceProcess("auth_service", env=env, workdir=workdir, name=f"auth{i}").start()
        for i in range(auth_replicas)
    ]
    todo_env = {
        "TODO_JWKS_URL": f"{auths[0].url}/.well-known/jwks.json",
        **todo_client(env, workdir),
        **env,
    }
    todos = [
        start_service("todo_service", workdir, todo_env, name=f"todo{i}")
        if i == 0
        else ServiceProcess("todo_service", env=todo_env, workdir=workdir, name=f"todo{i}").start()
        for i in range(todo_replicas)
    ]
    gateway_env = {
        "GATEWAY_AUTH_URL": ",".join(auth.url for auth in auths),
        "GATEWAY_TODO_URL": ",".join(todo.url for todo in todos),
        **env,
    }
    gateway = ServiceProcess(
        "gateway", env=gateway_env, workdir=workdir, port=gateway_port or free_port()
    ).start()
    stack = Stack(gateway=gateway, auths=auths, todos=todos, env=dict(env), workdir=workdir)

    def ready() -> bool:
        try:
            return httpx.get(f"{gateway.url}/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, timeout=30, what="the gateway to report every upstream ready")
    except BaseException:
        stack.stop()
        raise
    return stack
