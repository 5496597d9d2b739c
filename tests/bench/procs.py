"""Processes, databases and Redis prefixes for the benchmark, all cleaned up by one `Resources`.

Unlike tests/infra.py nothing here skips through pytest: a missing server raises, and the
measurement that needed it is reported as not measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.bench.cpu import tree_ticks
from tests.infra import (
    PG_ADMIN_DSN,
    REDIS_URL,
    ServiceProcess,
    new_key_encryption_key,
    run_cli,
)

PASSWORD = "correct horse battery staple"


def _read_cpu_ticks(pid: int, thread: int | None = None) -> int | None:
    stat = Path(f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat")
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15 of stat)


def process_tree_cpu_s(pid: int) -> float:
    """CPU seconds used so far by `pid` and all its descendants (granian's worker, the auth
    service's hashing processes and the forkserver that starts them), reaped ones included."""
    return tree_ticks(pid) / os.sysconf("SC_CLK_TCK")


@dataclass
class Service(ServiceProcess):
    """A service under load: tests/infra.py's process, whose CPU time the bench reads."""

    def cpu_s(self) -> float:
        return process_tree_cpu_s(self.proc.pid) if self.proc is not None else 0.0

    def main_thread_cpu_s(self) -> float:
        """CPU seconds of the process's main thread alone: the event loop, for uvicorn (the
        rest of `cpu_s` is then its other threads and processes: for auth, the hashing)."""
        if self.proc is None:
            return 0.0
        return (_read_cpu_ticks(self.proc.pid, self.proc.pid) or 0) / os.sysconf("SC_CLK_TCK")


# --- PostgreSQL and Redis ---------------------------------------------------------------------


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def admin_sql(sql: str) -> None:
    asyncio.run(_admin(sql))


def pg_url(name: str, driver: str = "postgresql+asyncpg") -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].split("://", 1)[1]
    return f"{driver}://{base}/{name}"


def redis_delete_prefix(prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=2)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        return len(keys)
    finally:
        client.close()


class Resources:
    """Everything started or created during the run, undone in reverse order by `close`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._undo: list[tuple[str, Callable[[], Any]]] = []
        self.kek = new_key_encryption_key()

    def defer(self, what: str, undo: Callable[[], Any]) -> None:
        self._undo.append((what, undo))

    def database(self, label: str) -> str:
        """A fresh PostgreSQL database (dropped at the end); its SQLAlchemy asyncpg URL."""
        name = f"bench_{label}_{secrets.token_hex(4)}"
        admin_sql(f'CREATE DATABASE "{name}"')
        self.defer(
            f"drop database {name}",
            lambda: admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'),
        )
        return pg_url(name)

    def redis_prefix(self, label: str) -> str:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
        prefix = f"bench:{label}:{secrets.token_hex(4)}:"
        self.defer(f"delete redis keys {prefix}*", lambda: redis_delete_prefix(prefix))
        return prefix

    def start(self, service: Service) -> Service:
        self.defer(f"stop {service.name or service.module}", service.stop)
        service.start(ready_timeout=60)
        return service

    def stop_services(self) -> None:
        """Stop every process still running (databases stay until `close`)."""
        for what, undo in reversed(self._undo):
            if what.startswith("stop "):
                with contextlib.suppress(Exception):
                    undo()

    def close(self) -> list[str]:
        problems: list[str] = []
        self.stop_services()
        while self._undo:
            what, undo = self._undo.pop()
            try:
                undo()
            except Exception as error:  # clean-up goes on; the report names what was left
                problems.append(f"{what}: {type(error).__name__}: {error}")
        return problems

    # --- the platform's services --------------------------------------------------------------

    def auth(self, name: str, env: Mapping[str, str]) -> Service:
        """Migrate, then start an auth service; `env` names its database and store."""
        workdir = self.workdir / name
        workdir.mkdir(parents=True, exist_ok=True)
        full = {"AUTH_KEY_ENCRYPTION_KEY": self.kek, **env}
        migrated = run_cli("auth_service", "migrate", env=full, cwd=workdir)
        if migrated.returncode != 0:
            raise RuntimeError(f"auth migrate failed: {migrated.stderr[-500:]}")
        return self.start(Service("auth_service", full, workdir, name=name))

    def migrate_todo(self, database_url: str) -> None:
        migrated = run_cli(
            "todo_service", "migrate", env={"TODO_DATABASE_URL": database_url}, cwd=self.workdir
        )
        if migrated.returncode != 0:
            raise RuntimeError(f"todo migrate failed: {migrated.stderr[-500:]}")

    def todo(
        self,
        name: str,
        env: Mapping[str, str],
        *,
        module: str = "todo_service",
        args: Sequence[str] = ("serve",),
    ) -> Service:
        """A todo service (or the bench's auth-off variant) on an already migrated database."""
        argv = [sys.executable, "-m", module, *args]
        return self.start(Service("todo_service", env, self.workdir / name, name=name, argv=argv))

    def stub_upstream(self, name: str) -> Service:
        """tests/bench/stub_upstream.py: answers every path at once (or after `?idle_us=`)."""
        stub = Service("stub_upstream", {}, self.workdir / name, name=name)
        stub.argv = [sys.executable, "-m", "tests.bench.stub_upstream", str(stub.port)]
        return self.start(stub)

    def gateway(self, name: str, auth: Service, todo: Service) -> Service:
        env = {"GATEWAY_AUTH_URL": auth.url, "GATEWAY_TODO_URL": todo.url}
        return self.start(Service("gateway", env, self.workdir / name, name=name))


@dataclass(frozen=True)
class Account:
    user_id: str
    email: str
    access_token: str
    refresh_token: str


def register(auth_url: str, label: str) -> Account:
    email = f"{label}-{secrets.token_hex(4)}@example.com"
    response = httpx.post(
        f"{auth_url}/auth/register", json={"email": email, "password": PASSWORD}, timeout=30
    )
    if response.status_code != 201:
        raise RuntimeError(f"register: {response.status_code} {response.text[:200]}")
    body = response.json()
    return Account(body["user"]["id"], email, body["access_token"], body["refresh_token"])


def login(auth_url: str, account: Account) -> Account:
    response = httpx.post(
        f"{auth_url}/auth/login",
        json={"email": account.email, "password": PASSWORD},
        timeout=30,
    )
    if response.status_code != 200:
        raise RuntimeError(f"login: {response.status_code} {response.text[:200]}")
    body = response.json()
    return Account(account.user_id, account.email, body["access_token"], body["refresh_token"])


def seed_tasks(base_url: str, account: Account, count: int) -> None:
    headers = {"Authorization": f"Bearer {account.access_token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        for number in range(count):
            created = client.post(
                f"/api/{account.user_id}/tasks",
                json={"title": f"task {number}", "description": "a task of the benchmark"},
            )
            if created.status_code != 201:
                raise RuntimeError(f"seed task: {created.status_code} {created.text[:200]}")
