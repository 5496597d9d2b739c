"""The whole stack stopped and started again on the same data: users, tasks, signing keys and
sessions survive, and a refresh token issued before the restart works exactly once after it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.infra import (
    fresh_postgres_database,
    fresh_redis_prefix,
    new_key_encryption_key,
    start_stack,
)
from tests.resilience.support import PASSWORD, bearer, claims, kid_of, register

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def storage(mode: str) -> Iterator[dict[str, str]]:
    if mode == "embedded":
        yield {}
        return
    with (
        fresh_postgres_database("restart-auth") as auth_db,
        fresh_postgres_database("restart-todo") as todo_db,
        fresh_redis_prefix("restart") as space,
    ):
        yield {
            "AUTH_DATABASE_URL": auth_db,
            "TODO_DATABASE_URL": todo_db,
            "AUTH_REDIS_URL": space.url,
            "AUTH_REDIS_PREFIX": f"{space.prefix}auth:",
        }


def jwks_kids(client: httpx.Client) -> set[str]:
    answer = client.get("/.well-known/jwks.json")
    assert answer.status_code == 200
    return {str(key["kid"]) for key in answer.json()["keys"]}


@pytest.mark.parametrize("mode", ["embedded", "postgres+redis"])
def test_everything_survives_a_restart_of_the_whole_stack(mode: str, tmp_path: Path) -> None:
    with storage(mode) as env:
        env = {"AUTH_KEY_ENCRYPTION_KEY": new_key_encryption_key(), **env}
        stack = start_stack(tmp_path, env)
        try:
            with httpx.Client(base_url=stack.url, timeout=30) as client:
                account = register(client, "restart")
                tasks = f"/api/{account.user_id}/tasks"
                for title in ("one", "two", "three"):
                    created = client.post(
                        tasks, json={"title": title}, headers=bearer(account.access_token)
                    )
                    assert created.status_code == 201
                kids_before = jwks_kids(client)
                # A second session, whose refresh token is kept unused across the restart.
                login = client.post(
                    "/auth/login", json={"email": account.email, "password": PASSWORD}
                )
                assert login.status_code == 200
                kept = login.json()
                sessions_before = client.get(
                    "/auth/sessions", headers=bearer(account.access_token)
                ).json()
                assert len(sessions_before) == 2
        finally:
            stack.stop()
        assert all(p.proc is not None and p.proc.poll() is not None for p in stack.processes())

        stack = start_stack(tmp_path, env)
        try:
            with httpx.Client(base_url=stack.url, timeout=30) as client:
                # Keys: the same key ring, so tokens signed before still verify.
                assert jwks_kids(client) == kids_before
                listed = client.get(tasks, headers=bearer(account.access_token))
                assert listed.status_code == 200, listed.text
                assert [item["title"] for item in listed.json()["items"]] == [
                    "three",
                    "two",
                    "one",
                ]
                # Users: the password still signs in, with the same key id.
                again = client.post(
                    "/auth/login", json={"email": account.email, "password": PASSWORD}
                )
                assert again.status_code == 200
                assert again.json()["user"]["id"] == account.user_id
                assert kid_of(again.json()["access_token"]) == kid_of(account.access_token)
                # Sessions: both earlier sessions are still listed.
                sessions_after = client.get(
                    "/auth/sessions", headers=bearer(account.access_token)
                ).json()
                assert {s["id"] for s in sessions_before} <= {s["id"] for s in sessions_after}

                # The refresh token kept across the restart works, and exactly once.
                def refresh(token: str) -> httpx.Response:
                    return client.post("/auth/refresh", json={"refresh_token": token})

                first = refresh(kept["refresh_token"])
                assert first.status_code == 200, first.text
                assert (
                    claims(first.json()["access_token"])["sid"]
                    == claims(kept["access_token"])["sid"]
                )
                second = refresh(first.json()["refresh_token"])
                assert second.status_code == 200
                reused = refresh(kept["refresh_token"])
                assert reused.status_code == 401
                assert reused.json()["code"] == "refresh_token_reused"
                # The other session, untouched by that theft alarm, still rotates.
                other = refresh(account.refresh_token)
                assert other.status_code == 200, other.text
        finally:
            stack.stop()
