"""Tasks through the real todo app, with tokens from a real auth process, on both storages."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from litestar.testing import AsyncTestClient

from tests.todo.conftest import User

Client = AsyncTestClient[Any]


async def test_crud(todo: Client, alice: User) -> None:
    created = await todo.post(
        alice.tasks,
        json={"title": "Buy milk", "description": "semi-skimmed"},
        headers=alice.headers,
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert set(task) == {"id", "title", "description", "completed", "created_at", "updated_at"}
    assert task["completed"] is False and task["description"] == "semi-skimmed"
    second = (
        await todo.post(alice.tasks, json={"title": "Walk the dog"}, headers=alice.headers)
    ).json()
    assert second["description"] == ""

    listed = await todo.get(alice.tasks, headers=alice.headers)
    assert listed.status_code == 200
    assert listed.json()["total"] == 2
    assert [item["id"] for item in listed.json()["items"]] == [second["id"], task["id"]]

    url = f"{alice.tasks}/{task['id']}"
    assert (await todo.get(url, headers=alice.headers)).json() == task
    updated = await todo.put(
        url, json={"title": "Buy oat milk", "completed": True}, headers=alice.headers
    )
    assert updated.status_code == 200
    assert updated.json()["title"] == "Buy oat milk"
    assert updated.json()["completed"] is True
    assert updated.json()["description"] == "semi-skimmed"  # absent means unchanged
    assert updated.json()["updated_at"] >= task["updated_at"]

    toggled = await todo.patch(f"{url}/complete", headers=alice.headers)
    assert toggled.status_code == 200 and toggled.json()["completed"] is False
    toggled = await todo.patch(f"{url}/complete", headers=alice.headers)
    assert toggled.json()["completed"] is True

    completed = await todo.get(alice.tasks, params={"status": "completed"}, headers=alice.headers)
    assert [item["id"] for item in completed.json()["items"]] == [task["id"]]
    pending = await todo.get(alice.tasks, params={"status": "pending"}, headers=alice.headers)
    assert [item["id"] for item in pending.json()["items"]] == [second["id"]]
    page = await todo.get(alice.tasks, params={"limit": 1, "offset": 1}, headers=alice.headers)
    assert page.json()["total"] == 2 and [i["id"] for i in page.json()["items"]] == [task["id"]]

    assert (await todo.delete(url, headers=alice.headers)).status_code == 204
    assert (await todo.get(url, headers=alice.headers)).status_code == 404
    assert (await todo.delete(url, headers=alice.headers)).status_code == 404
    assert (await todo.get(alice.tasks, headers=alice.headers)).json()["total"] == 1


async def test_pages_count_every_task_of_the_status_even_past_the_end(
    todo: Client, alice: User
) -> None:
    ids = []
    for n in range(5):
        created = await todo.post(alice.tasks, json={"title": f"t{n}"}, headers=alice.headers)
        ids.append(created.json()["id"])
    for done in ids[:2]:
        await todo.patch(f"{alice.tasks}/{done}/complete", headers=alice.headers)

    async def page(**params: Any) -> tuple[list[str], int]:
        response = await todo.get(alice.tasks, params=params, headers=alice.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        return [item["id"] for item in body["items"]], body["total"]

    newest_first = ids[::-1]
    assert await page() == (newest_first, 5)
    assert await page(limit=2, offset=3) == (newest_first[3:], 5)
    # A page past the end has no row, and still says how many there are.
    assert await page(offset=5) == ([], 5)
    assert await page(offset=1_000_000) == ([], 5)
    assert await page(status="completed", offset=2) == ([], 2)
    assert await page(status="pending", limit=1) == ([ids[4]], 3)
    assert await page(status="completed") == ([ids[1], ids[0]], 2)


async def test_users_are_isolated(todo: Client, alice: User, bob: User) -> None:
    secret = (
        await todo.post(alice.tasks, json={"title": "alice's secret"}, headers=alice.headers)
    ).json()
    alice_task = f"{alice.tasks}/{secret['id']}"
    bob_task_path = f"{bob.tasks}/{secret['id']}"

    # Bob on Alice's path: 403 on every route, whatever the task.
    for method, path in [
        ("GET", alice.tasks),
        ("POST", alice.tasks),
        ("GET", alice_task),
        ("PUT", alice_task),
        ("DELETE", alice_task),
        ("PATCH", f"{alice_task}/complete"),
    ]:
        response = await todo.request(method, path, json={"title": "x"}, headers=bob.headers)
        assert response.status_code == 403, (method, path)
        assert response.json()["code"] == "forbidden"
        assert "secret" not in response.text

    # Bob on his own path with Alice's task id: 404, never her data.
    for method, path in [
        ("GET", bob_task_path),
        ("PUT", bob_task_path),
        ("DELETE", bob_task_path),
        ("PATCH", f"{bob_task_path}/complete"),
    ]:
        response = await todo.request(method, path, json={"title": "x"}, headers=bob.headers)
        assert response.status_code == 404, (method, path)
        assert "secret" not in response.text
    assert (await todo.get(bob.tasks, headers=bob.headers)).json() == {"items": [], "total": 0}
    # Alice's task is untouched.
    unchanged = (await todo.get(alice_task, headers=alice.headers)).json()
    assert unchanged == secret


async def test_authentication_errors(todo: Client, alice: User) -> None:
    missing = await todo.get(alice.tasks)
    assert missing.status_code == 401
    assert missing.json()["code"] == "token_missing"
    # RFC 6750 with RFC 9728's pointer to the resource's metadata.
    assert missing.headers["www-authenticate"] == (
        'Bearer realm="todo-api", '
        'resource_metadata="http://127.0.0.1:8000/.well-known/oauth-protected-resource"'
    )
    assert missing.headers["content-type"].startswith("application/problem+json")
    garbage = await todo.get(alice.tasks, headers={"Authorization": "Bearer not-a-token"})
    assert garbage.status_code == 401
    assert garbage.json()["code"] == "token_invalid"
    assert 'error="invalid_token"' in garbage.headers["www-authenticate"]
    assert "resource_metadata=" in garbage.headers["www-authenticate"]
    basic = await todo.get(alice.tasks, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.json()["code"] == "token_missing"
    # Health, metrics and the schema are public.
    assert (await todo.get("/health/live")).status_code == 200
    assert (await todo.get("/health/ready")).status_code == 200
    assert (await todo.get("/schema/openapi.json")).status_code == 200


async def test_bad_inputs_are_4xx(todo: Client, alice: User) -> None:
    task = (await todo.post(alice.tasks, json={"title": "keep me"}, headers=alice.headers)).json()
    url = f"{alice.tasks}/{task['id']}"
    h = alice.headers
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("POST", alice.tasks, {"json": {"title": ""}}, 422),
        ("POST", alice.tasks, {"json": {"title": "x" * 201}}, 422),
        ("POST", alice.tasks, {"json": {"title": "ok", "description": "d" * 2001}}, 422),
        ("POST", alice.tasks, {"json": {"title": 5}}, 422),
        ("POST", alice.tasks, {"json": {}}, 422),
        ("POST", alice.tasks, {"json": ["title"]}, 422),
        ("POST", alice.tasks, {"json": {"title": "ok", "owner_id": str(uuid.uuid4())}}, 422),
        (
            "POST",
            alice.tasks,
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        (
            "POST",
            alice.tasks,
            {"content": b"x" * 70_000, "headers": {"Content-Type": "application/json"}},
            413,
        ),
        ("PUT", url, {"json": {"description": "no title"}}, 422),
        ("PUT", url, {"json": {"title": "t", "completed": "yes"}}, 422),
        ("GET", f"{alice.tasks}/not-a-uuid", {}, 422),
        ("GET", f"{alice.tasks}/{uuid.uuid4()}", {}, 404),
        ("GET", alice.tasks, {"params": {"status": "done"}}, 422),
        ("GET", alice.tasks, {"params": {"limit": 0}}, 422),
        ("GET", alice.tasks, {"params": {"limit": 101}}, 422),
        ("GET", alice.tasks, {"params": {"offset": -1}}, 422),
        ("GET", alice.tasks, {"params": {"limit": "many"}}, 422),
        ("GET", "/api/not-a-uuid/tasks", {}, 403),
        ("DELETE", f"{alice.tasks}/{task['id']}/extra", {}, 404),
    ]
    for method, path, kwargs, status in cases:
        headers = {**h, **kwargs.pop("headers", {})}
        response = await todo.request(method, path, headers=headers, **kwargs)
        assert response.status_code == status, (method, path, kwargs, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        if status == 422:
            assert response.json()["errors"], response.text
    # Nothing stored was lost or changed.
    assert (await todo.get(url, headers=h)).json() == task


async def test_concurrent_writes_by_one_user(todo: Client, alice: User) -> None:
    responses = await asyncio.gather(
        *(
            todo.post(alice.tasks, json={"title": f"task {i}"}, headers=alice.headers)
            for i in range(100)
        )
    )
    assert [response.status_code for response in responses] == [201] * 100
    listed = await todo.get(alice.tasks, params={"limit": 100}, headers=alice.headers)
    assert listed.json()["total"] == 100
    assert len({item["id"] for item in listed.json()["items"]}) == 100
