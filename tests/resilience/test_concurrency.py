"""Races through real processes: one email registered by 200 clients at once, and 500
concurrent task writes by one user. Both storage modes: SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.infra import fresh_postgres_database, new_key_encryption_key, start_service
from tests.resilience.servers import query_postgres
from tests.resilience.support import FAST_HASHING, PASSWORD, bearer, new_email

pytestmark = pytest.mark.slow

CLIENTS = 200
WRITES = 500


@contextlib.contextmanager
def databases(mode: str, workdir: Path) -> Iterator[tuple[dict[str, str], str, str]]:
    """Service env, then the auth and todo databases (a file path or a PostgreSQL URL)."""
    if mode == "sqlite":
        data = workdir / ".data"
        yield {}, str(data / "auth.db"), str(data / "todo.db")
        return
    with (
        fresh_postgres_database("race-auth") as auth_db,
        fresh_postgres_database("race-todo") as todo_db,
    ):
        yield {"AUTH_DATABASE_URL": auth_db, "TODO_DATABASE_URL": todo_db}, auth_db, todo_db


def rows(mode: str, database: str, sql: str) -> list[tuple[object, ...]]:
    if mode == "postgres":
        return query_postgres(database, sql)
    db = sqlite3.connect(database, timeout=30)
    try:
        return list(db.execute(sql))
    finally:
        db.close()


async def register_all_at_once(url: str, email: str) -> tuple[list[int], int, dict[str, object]]:
    """Every client posts at once; those told to come back (429/503 with Retry-After) do, all
    together again, until every client has a final answer. Returns the final statuses, the
    number of rounds and the body of the one 201."""
    final: dict[int, int] = {}
    created: dict[str, object] = {}
    rounds = 0
    pending = list(range(CLIENTS))
    while pending:
        rounds += 1
        assert rounds <= 60, f"{len(pending)} clients still told to retry after 60 rounds"
        # New connections each round, as new clients would open: none is left idle in a pool
        # while the server's keep-alive timer runs out.
        limits = httpx.Limits(max_connections=len(pending), max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            answers = await asyncio.gather(
                *(
                    client.post("/auth/register", json={"email": email, "password": PASSWORD})
                    for _ in pending
                )
            )
        retry: list[int] = []
        wait = 0.0
        for number, answer in zip(pending, answers, strict=True):
            if answer.status_code in (429, 503):
                assert answer.json()["code"] in ("rate_limited", "overloaded"), answer.text
                wait = max(wait, float(answer.headers["retry-after"]))
                retry.append(number)
                continue
            final[number] = answer.status_code
            if answer.status_code == 201:
                created = answer.json()
            else:
                assert answer.json()["code"] == "email_taken", answer.text
        pending = retry
        if pending:
            await asyncio.sleep(min(wait, 2.0))  # as the server asked (Retry-After)
    return list(final.values()), rounds, created


async def write_all_at_once(url: str, user_id: str, token: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=WRITES, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        return list(
            await asyncio.gather(
                *(
                    client.post(
                        f"/api/{user_id}/tasks", json={"title": f"w{n}"}, headers=bearer(token)
                    )
                    for n in range(WRITES)
                )
            )
        )


@pytest.mark.parametrize("mode", ["sqlite", "postgres"])
def test_one_email_200_clients_and_500_concurrent_writes(mode: str, tmp_path: Path) -> None:
    with databases(mode, tmp_path) as (env, auth_db, todo_db):
        # Cheap hashes bunch the 200 inserts together: the race is on the unique email.
        auth_env = {"AUTH_KEY_ENCRYPTION_KEY": new_key_encryption_key(), **FAST_HASHING, **env}
        auth = start_service("auth_service", tmp_path, auth_env, name="auth")
        try:
            email = new_email("race")
            started = time.monotonic()
            statuses, rounds, body = asyncio.run(register_all_at_once(auth.url, email))
            print(
                f"{mode}: {CLIENTS} registrations settled in {rounds} rounds, "
                f"{time.monotonic() - started:.1f}s"
            )
            assert len(statuses) == CLIENTS
            assert statuses.count(201) == 1, sorted(statuses)
            assert statuses.count(409) == CLIENTS - 1
            emails = [str(address) for (address,) in rows(mode, auth_db, "SELECT email FROM users")]
            assert emails.count(email) == 1
            login = httpx.post(
                f"{auth.url}/auth/login", json={"email": email, "password": PASSWORD}, timeout=30
            )
            assert login.status_code == 200
            user = body["user"]
            assert isinstance(user, dict)
            assert login.json()["user"]["id"] == user["id"]

            todo_env = {"TODO_JWKS_URL": f"{auth.url}/.well-known/jwks.json", **env}
            todo = start_service("todo_service", tmp_path, todo_env, name="todo")
            try:
                token = str(body["access_token"])
                started = time.monotonic()
                answers = asyncio.run(write_all_at_once(todo.url, user["id"], token))
                print(f"{mode}: {WRITES} writes in {time.monotonic() - started:.1f}s")
                statuses = [answer.status_code for answer in answers]
                assert statuses == [201] * WRITES, {s: statuses.count(s) for s in set(statuses)}
                ids = {answer.json()["id"] for answer in answers}
                assert len(ids) == WRITES
                listed = httpx.get(
                    f"{todo.url}/api/{user['id']}/tasks?limit=1", headers=bearer(token), timeout=30
                )
                assert listed.json()["total"] == WRITES
                stored = rows(mode, todo_db, "SELECT title FROM tasks")
                assert sorted(str(title) for (title,) in stored) == sorted(
                    f"w{n}" for n in range(WRITES)
                )
            finally:
                todo.stop()
        finally:
            auth.stop()
