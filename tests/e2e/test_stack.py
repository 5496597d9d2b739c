"""The whole platform as real processes, through the gateway only, on both storage modes."""

from __future__ import annotations

import base64
import json
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.infra import (
    RedisSpace,
    ServiceProcess,
    Stack,
    fresh_postgres_database,
    run_cli,
    start_stack,
    wait_until,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module", params=["embedded", "postgres+redis"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("stack")
    if request.param == "embedded":
        stack = start_stack(workdir)
        yield stack
        stack.stop()
        return
    space: RedisSpace = request.getfixturevalue("redis_space")
    with (
        fresh_postgres_database("e2e-auth") as auth_db,
        fresh_postgres_database("e2e-todo") as todo_db,
    ):
        env = {
            "AUTH_DATABASE_URL": auth_db,
            "TODO_DATABASE_URL": todo_db,
            "AUTH_REDIS_URL": space.url,
            "AUTH_REDIS_PREFIX": f"{space.prefix}e2e-auth:",
            "GATEWAY_REDIS_URL": space.url,
            "GATEWAY_REDIS_PREFIX": f"{space.prefix}e2e-gw:",
        }
        stack = start_stack(workdir, env)
        yield stack
        stack.stop()


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def test_register_login_tasks_refresh_logout(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url) as client:
        email = f"e2e-{secrets.token_hex(4)}@example.com"
        registered = client.post("/auth/register", json={"email": email, "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        login = client.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200
        body = login.json()
        user_id = body["user"]["id"]
        bearer = {"Authorization": f"Bearer {body['access_token']}"}

        created = client.post(f"/api/{user_id}/tasks", json={"title": "e2e"}, headers=bearer)
        assert created.status_code == 201
        listed = client.get(f"/api/{user_id}/tasks", headers=bearer).json()
        assert [item["title"] for item in listed["items"]] == ["e2e"]
        assert client.get("/auth/me", headers=bearer).json()["email"] == email

        refreshed = client.post("/auth/refresh", json={"refresh_token": body["refresh_token"]})
        assert refreshed.status_code == 200
        new = refreshed.json()
        new_bearer = {"Authorization": f"Bearer {new['access_token']}"}
        assert client.get(f"/api/{user_id}/tasks", headers=new_bearer).status_code == 200

        assert (
            client.post("/auth/logout", json={"refresh_token": new["refresh_token"]}).status_code
            == 204
        )
        ended = client.post("/auth/refresh", json={"refresh_token": new["refresh_token"]})
        assert ended.status_code == 401
        assert ended.json()["code"] == "session_revoked"
        # The OpenID discovery document names absolute URLs on the issuer.
        discovery = client.get("/.well-known/openid-configuration").json()
        assert discovery["jwks_uri"].startswith(discovery["issuer"])


def test_request_id_reaches_every_service_log(stack: Stack) -> None:
    request_id = f"trace-{secrets.token_hex(8)}"
    with httpx.Client(base_url=stack.url) as client:
        email = f"trace-{secrets.token_hex(4)}@example.com"
        body = client.post(
            "/auth/register",
            json={"email": email, "password": PASSWORD},
            headers={"X-Request-ID": request_id},
        ).json()
        response = client.get(
            f"/api/{body['user']['id']}/tasks",
            headers={"Authorization": f"Bearer {body['access_token']}", "X-Request-ID": request_id},
        )
        assert response.headers["x-request-id"] == request_id
    for process in stack.processes():

        def logged(process: ServiceProcess = process) -> bool:
            return request_id in process.log_text()

        wait_until(logged, timeout=10, what=f"{process.name or process.module} to log the id")


def test_dot_segments_are_refused(stack: Stack) -> None:
    host, port = "127.0.0.1", stack.gateway.port
    with socket.create_connection((host, port), timeout=5) as connection:
        connection.sendall(
            b"GET /auth/../api/x/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    assert status == 400, answer[:300]
    assert b"malformed_request" in answer


def test_scale_out_and_rotation_across_replicas(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, auth_replicas=2, todo_replicas=2)
    try:
        with httpx.Client(base_url=stack.url) as client:
            users = []
            for _ in range(4):  # round robin: both auth replicas register and sign
                email = f"scale-{secrets.token_hex(4)}@example.com"
                response = client.post(
                    "/auth/register", json={"email": email, "password": PASSWORD}
                )
                assert response.status_code == 201
                users.append(response.json())
            kids_before = {kid_of(user["access_token"]) for user in users}
            assert len(kids_before) == 1  # the replicas agree on the active key

            rotated = run_cli("auth_service", "rotate-keys", "--force", env=stack.env, cwd=tmp_path)
            assert rotated.returncode == 0, rotated.stderr

            def both_replicas_sign_with_the_new_key() -> bool:
                kids = set()
                for auth in stack.auths:
                    email = f"rot-{secrets.token_hex(4)}@example.com"
                    body = httpx.post(
                        f"{auth.url}/auth/register", json={"email": email, "password": PASSWORD}
                    ).json()
                    users.append(body)
                    kids.add(kid_of(body["access_token"]))
                return len(kids) == 1 and not kids & kids_before

            wait_until(
                both_replicas_sign_with_the_new_key, timeout=30, what="both auth replicas to rotate"
            )
            # Every token, old key or new, works on every todo replica (through the gateway).
            for user in users:
                headers = {"Authorization": f"Bearer {user['access_token']}"}
                for _ in range(2):
                    listed = client.get(f"/api/{user['user']['id']}/tasks", headers=headers)
                    assert listed.status_code == 200, listed.text
            # A refresh token issued by one replica rotates on the other.
            first = users[0]["refresh_token"]
            answers = [
                client.post("/auth/refresh", json={"refresh_token": first}) for _ in range(2)
            ]
            assert [a.status_code for a in answers] == [200, 200]
            assert answers[0].json()["refresh_token"] == answers[1].json()["refresh_token"]  # grace
    finally:
        stack.stop()
