"""Storage outages under load: PostgreSQL stopped under logins and task writes, Redis (the
refresh-session store) killed under refresh rotations. Real processes, private servers."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from auth_service.sessions.tokens import digest
from tests.infra import Stack, fresh_postgres_database, start_stack
from tests.resilience.servers import PrivatePostgres, private_postgres, private_redis
from tests.resilience.support import (
    FAST_HASHING,
    NO_GATEWAY_LIMIT,
    NO_LOCKOUT,
    PASSWORD,
    Account,
    Answer,
    Recorder,
    Workers,
    answer_of,
    bearer,
    claims,
    new_email,
    register,
    summary,
    wait_for,
)

KINDS = ("login", "task", "register")
# The Redis session store's keys: AUTH_REDIS_PREFIX then "sessions:" (sessions/factory.py).
SESSION_KEYS = "auth:sessions:"

pytestmark = pytest.mark.slow


def assert_clear_unavailability(
    answers: list[Answer], *, allowed: set[int], phases: dict[str, int] | None = None
) -> None:
    """Only the statuses allowed, and every 503 is `upstream_unavailable` with Retry-After.
    `phases` names the index where each phase of the run began, for the failure message."""
    unexpected = [a for a in answers if a.status not in allowed | {503}]
    unclear = [
        a
        for a in answers
        if a.status == 503
        and not (
            a.code == "upstream_unavailable"
            and a.retry_after is not None
            and a.retry_after.isdigit()
            and int(a.retry_after) > 0
        )
    ]
    by_phase = ""
    if phases:
        bounds = [*phases.values(), len(answers)]
        for (name, start), end in zip(phases.items(), bounds[1:], strict=True):
            wrong = [a for a in answers[start:end] if a.status not in allowed | {503}]
            by_phase += f" {name}: {summary(wrong)};"
    assert not unexpected and not unclear, (
        f"unexpected answers {summary(unexpected)} (by phase:{by_phase}) e.g. {unexpected[:3]}; "
        f"503s without code upstream_unavailable and Retry-After: {summary(unclear)}, "
        f"e.g. {unclear[:3]}"
    )


def assert_same_processes(stack: Stack, pids: list[int]) -> None:
    """Recovery happened without a restart: the very same processes are still running."""
    for process, pid in zip(stack.processes(), pids, strict=True):
        assert process.proc is not None
        assert process.proc.poll() is None, f"{process.name or process.module} exited"
        assert process.proc.pid == pid


SUCCESS = {"login": 200, "task": 201, "register": 201, "refresh": 200, "todo": 200}


def failures(recorder: Recorder, kind: str, *, since: int) -> int:
    return sum(
        1 for a in recorder.since(since) if a.kind == kind and a.status not in (SUCCESS[kind], 201)
    )


def successes(recorder: Recorder, kind: str, *, since: int) -> int:
    return sum(
        1 for a in recorder.since(since) if a.kind == kind and a.status in (SUCCESS[kind], 201)
    )


def test_postgres_outage_answers_503_then_recovers_without_losing_rows(tmp_path: Path) -> None:
    with private_postgres() as pg:
        env = {
            "AUTH_DATABASE_URL": pg.create_database("auth"),
            "TODO_DATABASE_URL": pg.create_database("todo"),
            **FAST_HASHING,
            **NO_GATEWAY_LIMIT,
            **NO_LOCKOUT,
        }
        stack = start_stack(tmp_path, env)
        try:
            run_postgres_outage(stack, pg)
        finally:
            stack.stop()


def run_postgres_outage(stack: Stack, pg: PrivatePostgres) -> None:
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        accounts = [register(client, "pg-outage") for _ in range(2)]
    recorder = Recorder()
    workers = Workers()
    numbers = itertools.count()

    def login_loop(account: Account) -> Callable[[], None]:
        client = workers.client(stack.url)

        def loop() -> None:
            try:
                response = client.post(
                    "/auth/login", json={"email": account.email, "password": PASSWORD}
                )
            except httpx.TransportError as error:
                recorder.add(Answer("login", 0, detail=repr(error)))
                return
            token = response.json()["refresh_token"] if response.status_code == 200 else None
            recorder.add(answer_of("login", response, token))

        return loop

    def task_loop(account: Account) -> Callable[[], None]:
        client = workers.client(stack.url)

        def loop() -> None:
            title = f"task-{next(numbers)}"
            try:
                response = client.post(
                    f"/api/{account.user_id}/tasks",
                    json={"title": title},
                    headers=bearer(account.access_token),
                )
            except httpx.TransportError as error:
                recorder.add(Answer("task", 0, detail=(title, None, repr(error))))
                return
            task_id = response.json()["id"] if response.status_code == 201 else None
            recorder.add(answer_of("task", response, (title, task_id, account.user_id)))

        return loop

    register_client = workers.client(stack.url)

    def register_loop() -> None:
        email = new_email("pg-new")
        try:
            response = register_client.post(
                "/auth/register", json={"email": email, "password": PASSWORD}
            )
        except httpx.TransportError as error:
            recorder.add(Answer("register", 0, detail=(email, repr(error))))
            return
        recorder.add(answer_of("register", response, email))

    for account in accounts:
        workers.spawn(login_loop(account))
        workers.spawn(task_loop(account))
    workers.spawn(register_loop, pause=0.05)
    pids = [process.proc.pid for process in stack.processes() if process.proc is not None]
    try:
        wait_for(
            recorder,
            lambda: all(successes(recorder, kind, since=0) >= 4 for kind in KINDS),
            timeout=30,
            what="logins, registrations and task writes to succeed before the faults",
            since=0,
        )
        # Fault 1: every connection of both services is cut while the server stays up. The
        # pools hold dead connections; the services must notice and reconnect by themselves.
        cut = recorder.mark()
        pg.execute(
            "postgres",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname IN ('auth', 'todo') AND pid <> pg_backend_pid()",
        )
        wait_for(
            recorder,
            lambda: all(successes(recorder, kind, since=cut) >= 4 for kind in KINDS),
            timeout=30,
            what="every kind of request to succeed again after the connections were cut",
            since=cut,
        )
        # Fault 2: the server goes away.
        pg.stop()
        outage = recorder.mark()
        wait_for(
            recorder,
            lambda: all(failures(recorder, kind, since=outage) >= 5 for kind in KINDS),
            timeout=30,
            what="every kind of request to be refused while PostgreSQL is down",
            since=outage,
        )
        for process in (stack.auths[0], stack.todos[0]):
            ready = httpx.get(f"{process.url}/health/ready", timeout=10)
            assert ready.status_code == 503, ready.text
            assert "database" in ready.text
        pg.start()
        recovery = recorder.mark()
        wait_for(
            recorder,
            lambda: all(successes(recorder, kind, since=recovery) >= 4 for kind in KINDS),
            timeout=30,
            what="every kind of request to recover once PostgreSQL is back",
            since=recovery,
        )
    finally:
        workers.stop()
    assert_same_processes(stack, pids)
    for process in (stack.auths[0], stack.todos[0]):
        assert httpx.get(f"{process.url}/health/ready", timeout=10).status_code == 200

    answers = recorder.since(0)
    assert any(a.status == 503 for a in answers[outage:recovery])

    # Tasks: every 201 is stored, nothing is stored twice, a stored task that did not get its
    # 201 can only be one whose request failed (an in-doubt commit), and the API agrees.
    created = {a.detail[0]: a.detail[1] for a in answers if a.kind == "task" and a.status == 201}
    failed = {a.detail[0] for a in answers if a.kind == "task" and a.status != 201}
    rows = pg.fetch("todo", "SELECT id::text, title, owner_id::text FROM tasks")
    stored = {str(title): str(task_id) for task_id, title, _ in rows}
    assert len(stored) == len(rows), "a task was stored twice"
    missing = {title for title in created if title not in stored}
    assert not missing, f"tasks acknowledged with 201 but not stored: {sorted(missing)[:5]}"
    assert all(stored[title] == task_id for title, task_id in created.items())
    assert set(stored) - set(created) <= failed
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        for account in accounts:
            listed = client.get(
                f"/api/{account.user_id}/tasks", headers=bearer(account.access_token)
            )
            assert listed.status_code == 200
            owned = [row for row in rows if row[2] == account.user_id]
            assert listed.json()["total"] == len(owned)

    # Users: every 201 registration exists, and only attempted emails do.
    registered = {a.detail for a in answers if a.kind == "register" and a.status == 201}
    attempted = {a.detail for a in answers if a.kind == "register"}
    emails = {str(row[0]) for row in pg.fetch("auth", "SELECT email FROM users")}
    assert registered | {account.email for account in accounts} <= emails
    assert emails - {account.email for account in accounts} <= attempted

    # Sessions: every refresh token handed out by a 200 login is recorded, and every session's
    # current token exists and is live.
    issued = [a.detail for a in answers if a.kind == "login" and a.status == 200]
    tokens = {str(row[0]) for row in pg.fetch("auth", "SELECT digest FROM refresh_tokens")}
    assert all(digest(token) in tokens for token in issued), "a login's refresh token was lost"
    broken = pg.fetch(
        "auth",
        "SELECT s.id FROM refresh_sessions s LEFT JOIN refresh_tokens t "
        "ON t.digest = s.current_digest AND t.session_id = s.id AND t.retired_at IS NULL "
        "WHERE t.digest IS NULL",
    )
    assert not broken, f"sessions whose current token is missing: {broken[:5]}"
    # The last token handed out still rotates.
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        refreshed = client.post("/auth/refresh", json={"refresh_token": issued[-1]})
        assert refreshed.status_code == 200, refreshed.text
    # Last, the answers themselves: only successes and clear 503s, never a 500 or a false 409.
    phases = {"before": 0, "connections cut": cut, "server down": outage, "back": recovery}
    assert_clear_unavailability(answers, allowed={200, 201}, phases=phases)


class Chain:
    """One session's refresh tokens as its client received them, oldest first."""

    def __init__(self, account: Account) -> None:
        self.session_id = str(claims(account.access_token)["sid"])
        self.tokens = [account.refresh_token]

    @property
    def current(self) -> str:
        return self.tokens[-1]


def test_redis_outage_refresh_answers_503_and_never_issues_unrecorded_tokens(
    tmp_path: Path,
) -> None:
    with (
        private_redis() as redis_server,
        fresh_postgres_database("res-auth") as auth_db,
        fresh_postgres_database("res-todo") as todo_db,
    ):
        env = {
            "AUTH_DATABASE_URL": auth_db,
            "TODO_DATABASE_URL": todo_db,
            "AUTH_REDIS_URL": redis_server.url,
            "AUTH_REDIS_PREFIX": "auth:",
            # A rotation whose answer the outage swallowed is retried with the same token
            # after recovery: the grace answer (the recorded successor) must still apply.
            "AUTH_REFRESH_REUSE_GRACE": "300",
            **FAST_HASHING,
            **NO_GATEWAY_LIMIT,
            **NO_LOCKOUT,
        }
        stack = start_stack(tmp_path, env)
        try:
            with httpx.Client(base_url=stack.url, timeout=30) as client:
                accounts = [register(client, "redis-outage") for _ in range(3)]
            chains = [Chain(account) for account in accounts]
            recorder = Recorder()
            workers = Workers()

            def refresh_loop(index: int) -> Callable[[], None]:
                client = workers.client(stack.url)
                chain = chains[index]

                def loop() -> None:
                    try:
                        response = client.post(
                            "/auth/refresh", json={"refresh_token": chain.current}
                        )
                    except httpx.TransportError as error:
                        recorder.add(Answer("refresh", 0, detail=repr(error)))
                        return
                    if response.status_code == 200:
                        chain.tokens.append(response.json()["refresh_token"])
                    recorder.add(answer_of("refresh", response, index))

                return loop

            todo_numbers = itertools.count()
            owner = accounts[0]
            todo_client = workers.client(stack.url)

            def todo_loop() -> None:
                number = next(todo_numbers)
                path = f"/api/{owner.user_id}/tasks"
                try:
                    if number % 2:
                        response = todo_client.get(path, headers=bearer(owner.access_token))
                    else:
                        response = todo_client.post(
                            path, json={"title": f"t{number}"}, headers=bearer(owner.access_token)
                        )
                except httpx.TransportError as error:
                    recorder.add(Answer("todo", 0, detail=repr(error)))
                    return
                recorder.add(answer_of("todo", response))

            for index in range(len(chains)):
                workers.spawn(refresh_loop(index))
            workers.spawn(todo_loop)
            pids = [process.proc.pid for process in stack.processes() if process.proc is not None]
            try:
                wait_for(
                    recorder,
                    lambda: (
                        recorder.count("refresh", 200) >= 9 and recorder.count("todo", 201) >= 3
                    ),
                    timeout=30,
                    what="refreshes and task writes before the outage",
                    since=0,
                )
                redis_server.kill()
                outage = recorder.mark()
                wait_for(
                    recorder,
                    lambda: (
                        recorder.count("refresh", 503, since=outage) >= 6
                        and recorder.count("todo", 200, since=outage) >= 3
                        and recorder.count("todo", 201, since=outage) >= 3
                    ),
                    timeout=30,
                    what="refresh to answer 503 while the todo service keeps serving",
                    since=outage,
                )
                ready = httpx.get(f"{stack.auths[0].url}/health/ready", timeout=10)
                assert ready.status_code == 503, ready.text
                assert "session_store" in ready.text
                login = httpx.post(
                    f"{stack.url}/auth/login",
                    json={"email": owner.email, "password": PASSWORD},
                    timeout=30,
                )
                assert login.status_code == 503, login.text
                redis_server.start()
                recovery = recorder.mark()

                def every_chain_rotates_again() -> bool:
                    rotated = {
                        a.detail
                        for a in recorder.since(recovery)
                        if a.kind == "refresh" and a.status == 200
                    }
                    return rotated == set(range(len(chains)))

                wait_for(
                    recorder,
                    every_chain_rotates_again,
                    timeout=30,
                    what="every session to rotate again after Redis is back",
                    since=recovery,
                )
            finally:
                workers.stop()
            assert_same_processes(stack, pids)

            answers = recorder.since(0)
            todo = [a for a in answers if a.kind == "todo"]
            assert all(a.status in (200, 201) for a in todo), [
                a for a in todo if a.status not in (200, 201)
            ][:5]
            refreshes = [a for a in answers if a.kind == "refresh"]
            assert_clear_unavailability(refreshes, allowed={200})
            assert any(a.status == 503 for a in answers[outage:recovery])

            # Every token handed out is recorded in Redis, as one linear chain per session.
            store = redis_server.client()
            for chain in chains:
                session = store.hgetall(f"{SESSION_KEYS}s:{chain.session_id}")
                assert session.get("cur") == digest(chain.current)
                assert "revoked" not in session
                records = [
                    store.hgetall(f"{SESSION_KEYS}t:{digest(token)}") for token in chain.tokens
                ]
                assert all(record.get("sid") == chain.session_id for record in records), (
                    "a refresh token was handed out but never recorded"
                )
                for record, successor in zip(records, chain.tokens[1:], strict=False):
                    assert record.get("succ") == digest(successor)
                assert "retired" not in records[-1]
            store.close()

            # The newest token works exactly once: its reuse later is theft, ending the session.
            with httpx.Client(base_url=stack.url, timeout=30) as client:
                for chain in chains:

                    def refresh(token: str) -> httpx.Response:
                        return client.post("/auth/refresh", json={"refresh_token": token})

                    first = refresh(chain.current)
                    assert first.status_code == 200, first.text
                    second = refresh(first.json()["refresh_token"])
                    assert second.status_code == 200, second.text
                    reused = refresh(chain.current)
                    assert reused.status_code == 401
                    assert reused.json()["code"] == "refresh_token_reused"
                    ended = refresh(second.json()["refresh_token"])
                    assert ended.status_code == 401
                    assert ended.json()["code"] == "session_revoked"
        finally:
            stack.stop()
