"""Tenant isolation (issue 6; OWASP API Security Top 10 2023 API1, broken object level
authorization; CWE-639): user A's genuine token against everything of user B's.

Contract: `{user_id}` must equal the token's `sub`, else 403 `forbidden`; a task of another
user is 404, never 403 and never its data. Runs in both storage modes (the `todo` fixture).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from tests.infra import ServiceProcess
from tests.security.forge import bearer
from tests.todo.conftest import User, register_user

Client = AsyncTestClient[Any]
SECRET = "bob's-secret-title-7f3a"
SECRET_DESCRIPTION = "bob's-secret-description-91c2"
ROUTES = ["list", "create", "get", "update", "delete", "complete"]


@dataclass(frozen=True)
class Tenants:
    todo: Client
    alice: User
    bob: User
    bob_tasks: list[dict[str, Any]]
    bob_total: int
    alice_task: dict[str, Any]

    @property
    def bob_task_ids(self) -> list[str]:
        return [str(task["id"]) for task in self.bob_tasks]


# Registering costs an Argon2 hash on the auth process: two users per module, not per test.
@pytest.fixture(scope="module")
def alice(auth_server: ServiceProcess) -> User:
    return register_user(auth_server, "iso-alice")


@pytest.fixture(scope="module")
def bob(auth_server: ServiceProcess) -> User:
    return register_user(auth_server, "iso-bob")


@pytest.fixture
async def tenants(todo: Client, alice: User, bob: User) -> Tenants:
    bob_tasks = []
    for index in range(3):
        created = await todo.post(
            bob.tasks,
            json={"title": f"{SECRET} {index}", "description": SECRET_DESCRIPTION},
            headers=bob.headers,
        )
        assert created.status_code == 201, created.text
        bob_tasks.append(created.json())
    # One completed, so status filters have something of Bob's to leak.
    completed = await todo.patch(f"{bob.tasks}/{bob_tasks[0]['id']}/complete", headers=bob.headers)
    assert completed.status_code == 200
    bob_tasks[0] = completed.json()
    mine = await todo.post(alice.tasks, json={"title": "alice's own"}, headers=alice.headers)
    assert mine.status_code == 201
    total = (await todo.get(bob.tasks, headers=bob.headers)).json()["total"]
    return Tenants(todo, alice, bob, bob_tasks, total, mine.json())


def request_for(route: str, base: str, task_id: str) -> tuple[str, str, dict[str, Any]]:
    """(method, path, request kwargs) of one todo route under the list path `base`."""
    body = {"title": "overwritten by alice", "description": "x", "completed": False}
    requests: dict[str, tuple[str, str, dict[str, Any]]] = {
        "list": ("GET", base, {"params": {"status": "all", "limit": 100}}),
        "create": ("POST", base, {"json": {"title": "planted by alice"}}),
        "get": ("GET", f"{base}/{task_id}", {}),
        "update": ("PUT", f"{base}/{task_id}", {"json": body}),
        "delete": ("DELETE", f"{base}/{task_id}", {}),
        "complete": ("PATCH", f"{base}/{task_id}/complete", {}),
    }
    return requests[route]


def assert_nothing_of_bobs(response: httpx.Response, tenants: Tenants) -> None:
    assert response.status_code != 500, response.text
    assert not 200 <= response.status_code < 300, (response.status_code, response.text)
    assert SECRET not in response.text
    assert SECRET_DESCRIPTION not in response.text
    for task_id in tenants.bob_task_ids:
        # A task id in a 404 detail would confirm it exists.
        assert task_id not in response.text
    if response.content:
        assert response.headers["content-type"].startswith("application/problem+json")


async def assert_bob_untouched(tenants: Tenants) -> None:
    """Bob's list is exactly as he left it: nothing changed, deleted, toggled or planted."""
    todo, bob = tenants.todo, tenants.bob
    listed = await todo.get(bob.tasks, params={"limit": 100}, headers=bob.headers)
    assert listed.status_code == 200
    assert listed.json()["total"] == tenants.bob_total
    assert "by alice" not in listed.text
    for task in tenants.bob_tasks:
        response = await todo.get(f"{bob.tasks}/{task['id']}", headers=bob.headers)
        assert response.status_code == 200
        assert response.json() == task
    # And nothing of Bob's moved into Alice's list.
    own = await todo.get(tenants.alice.tasks, params={"limit": 100}, headers=tenants.alice.headers)
    assert SECRET not in own.text


async def test_positive_control_bob_sees_his_secret(tenants: Tenants) -> None:
    """The leak checks below would notice Bob's data: here it is, for Bob."""
    for task_id in tenants.bob_task_ids:
        response = await tenants.todo.get(
            f"{tenants.bob.tasks}/{task_id}", headers=tenants.bob.headers
        )
        assert response.status_code == 200
        assert SECRET in response.text
    listed = await tenants.todo.get(tenants.bob.tasks, headers=tenants.bob.headers)
    assert SECRET in listed.text and listed.json()["total"] == tenants.bob_total >= 3


async def send(
    tenants: Tenants, route: str, base: str, task_id: str
) -> tuple[str, str, httpx.Response]:
    """One todo route, with Alice's genuine token."""
    method, path, kwargs = request_for(route, base, task_id)
    response = await tenants.todo.request(method, path, headers=tenants.alice.headers, **kwargs)
    return method, path, response


# OWASP API1:2023 / CWE-639: Alice's token on Bob's list path, every route x every kind of
# task id (Bob's, Alice's own, random, malformed): 403 forbidden, decided before any task is
# looked at.
async def test_alices_token_on_bobs_path_is_forbidden(tenants: Tenants) -> None:
    task_ids = [*tenants.bob_task_ids, str(tenants.alice_task["id"]), str(uuid.uuid4())]
    for route in ROUTES:
        for task_id in [*task_ids, "not-a-uuid"]:
            method, path, response = await send(tenants, route, tenants.bob.tasks, task_id)
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["code"] == "forbidden"
            assert_nothing_of_bobs(response, tenants)
    await assert_bob_untouched(tenants)


# Same, with Bob's user id spelled differently (the same UUID, another string): the path must
# equal the token's sub, and no spelling of Bob's id is Alice's.
async def test_other_spellings_of_bobs_id_are_forbidden(tenants: Tenants) -> None:
    bob_id = tenants.bob.id
    spellings = [
        bob_id.upper(),
        f"{{{bob_id}}}",
        f"urn:uuid:{bob_id}",
        bob_id.replace("-", ""),
        f"{bob_id}%2F",
        f"{bob_id}%00",
        f"%20{bob_id}",
    ]
    for user_id in spellings:
        for route in ROUTES:
            base = f"/api/{user_id}/tasks"
            method, path, response = await send(tenants, route, base, tenants.bob_task_ids[1])
            # A control character is refused before any lookup (kit.text_input): 422.
            allowed = (422,) if "%00" in user_id else (403, 404)
            assert response.status_code in allowed, (method, path, response.text)
            assert_nothing_of_bobs(response, tenants)
    await assert_bob_untouched(tenants)


# OWASP API1:2023 (IDOR): Bob's task ids under Alice's own path are not found - 404, never 403
# (which would confirm they exist) and never their data. A random UUID gets the very same
# answer, so a 404 tells Alice nothing about Bob.
async def test_bobs_task_ids_under_alices_path_are_not_found(tenants: Tenants) -> None:
    for route in ["get", "update", "delete", "complete"]:
        _, _, random_response = await send(tenants, route, tenants.alice.tasks, str(uuid.uuid4()))
        assert random_response.status_code == 404
        for task_id in tenants.bob_task_ids:
            method, path, response = await send(tenants, route, tenants.alice.tasks, task_id)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["code"] == "not_found"
            assert response.json() == random_response.json()
            assert_nothing_of_bobs(response, tenants)
    await assert_bob_untouched(tenants)


# Ids that are not UUIDs (SQL, wildcards, numbers, NUL) under Alice's own path are a 4xx about
# the id - 404, or the contract's 422 validation error - never someone's task, never a 500.
NON_UUID_IDS = [
    "1",
    "0",
    "-1",
    "*",
    "%25",
    "' OR '1'='1",
    "1 OR 1=1",
    "null",
    "undefined",
    "00000000-0000-0000-0000-00000000000g",
    "{id}",
    "%00",
]


async def test_non_uuid_task_ids_are_rejected(tenants: Tenants) -> None:
    for raw in NON_UUID_IDS:
        task_id = httpx.URL(f"http://x/{raw}").raw_path.decode()[1:]
        for route in ["get", "update", "delete", "complete"]:
            method, path, response = await send(tenants, route, tenants.alice.tasks, task_id)
            assert response.status_code in (404, 422), (method, path, response.text)
            assert_nothing_of_bobs(response, tenants)
    await assert_bob_untouched(tenants)


def traversal_paths(alice: str, bob: str, bob_task: str) -> dict[str, str]:
    """Paths that start under Alice's list and, once decoded and normalised, would land on
    Bob's (OWASP WSTG-ATHZ-01, CWE-22)."""
    return {
        "task-id-encoded-slashes": f"/api/{alice}/tasks/..%2F..%2F{bob}%2Ftasks",
        "task-id-encoded-dots-and-slashes": (
            f"/api/{alice}/tasks/%2e%2e%2f%2e%2e%2f{bob}%2ftasks%2f{bob_task}"
        ),
        "user-id-encoded-slashes": f"/api/{alice}%2F..%2F{bob}/tasks",
        "user-id-encoded-traversal-to-task": f"/api/{alice}%2F..%2F{bob}/tasks/{bob_task}",
        "encoded-dot-segments-only": f"/api/{alice}/%2e%2e/{bob}/tasks/{bob_task}",
        "double-encoded": f"/api/{alice}/tasks/..%252F..%252F{bob}%252Ftasks%252F{bob_task}",
        "backslashes": f"/api/{alice}/tasks/..%5C..%5C{bob}%5Ctasks%5C{bob_task}",
        "overlong-utf8-dot": f"/api/{alice}/tasks/%c0%ae%c0%ae%2F{bob}%2Ftasks",
        "semicolon-path-parameter": f"/api/{alice};/../{bob}/tasks/{bob_task}",
        "task-id-then-traversal": f"/api/{alice}/tasks/{bob_task}%2F..%2F..",
    }


# URL-encoded path traversal from Alice's path to Bob's, with every method: never Bob's data,
# never a change to Bob's tasks, never a 500.
async def test_url_encoded_traversal_never_reaches_bob(tenants: Tenants) -> None:
    paths = traversal_paths(tenants.alice.id, tenants.bob.id, tenants.bob_task_ids[1])
    for case, path in paths.items():
        for method in ("GET", "PUT", "DELETE", "PATCH", "POST"):
            kwargs: dict[str, Any] = {}
            if method in ("PUT", "POST"):
                kwargs["json"] = {"title": "planted by alice"}
            response = await tenants.todo.request(
                method, path, headers=tenants.alice.headers, **kwargs
            )
            assert response.status_code in (400, 403, 404, 405, 422), (
                case,
                method,
                path,
                response.text,
            )
            assert_nothing_of_bobs(response, tenants)
    await assert_bob_untouched(tenants)


# The same isolation holds in the auth service: Alice cannot end one of Bob's sessions, and
# does not see them in her list (contract: DELETE /auth/sessions/{id} is 404 otherwise).
async def test_alice_cannot_end_bobs_session(auth_server: ServiceProcess) -> None:
    alice = register_user(auth_server, "iso-alice")
    bob = register_user(auth_server, "iso-bob")
    async with httpx.AsyncClient(base_url=auth_server.url, timeout=10) as auth:
        bob_sessions = (await auth.get("/auth/sessions", headers=bearer(bob.access_token))).json()
        assert len(bob_sessions) == 1
        bob_session = bob_sessions[0]["id"]
        alice_sessions = await auth.get("/auth/sessions", headers=bearer(alice.access_token))
        assert bob_session not in alice_sessions.text
        deleted = await auth.delete(
            f"/auth/sessions/{bob_session}", headers=bearer(alice.access_token)
        )
        assert deleted.status_code == 404, deleted.text
        assert deleted.json()["code"] == "not_found"
        # Bob's session is alive: his refresh token still rotates.
        refreshed = await auth.post("/auth/refresh", json={"refresh_token": bob.refresh_token})
        assert refreshed.status_code == 200, refreshed.text
        # And /auth/me with Alice's token is Alice, never Bob.
        me = await auth.get("/auth/me", headers=bearer(alice.access_token))
        assert me.json()["id"] == alice.id != bob.id
