"""Bad text on every text input of every todo route, on both storages (kit.text_input): NUL,
other control characters and lone surrogates are refused with a 4xx naming the field, never a
500, and a refused request changes no task. A description may hold line breaks and tabs."""

from __future__ import annotations

import json
from typing import Any

from litestar.testing import AsyncTestClient

from tests.auth.test_text_input import (
    HEADER_REFUSED,
    LINE_BREAKS,
    REFUSED,
    SURROGATES,
    URL_ESCAPES,
    assert_refused,
)
from tests.todo.conftest import User

Client = AsyncTestClient[Any]


async def _task(todo: Client, user: User, title: str = "Buy milk") -> dict[str, Any]:
    created = await todo.post(user.tasks, json={"title": title}, headers=user.headers)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def test_task_bodies(todo: Client, alice: User) -> None:
    task = await _task(todo, alice)
    before = (await todo.get(alice.tasks, headers=alice.headers)).json()
    headers = {**alice.headers, "Content-Type": "application/json"}
    one_line = [(label, char, 422) for label, char in REFUSED + LINE_BREAKS]
    multiline = [(label, char, 422) for label, char in REFUSED]
    surrogates = [(label, char, 400) for label, char in SURROGATES]
    item = f"{alice.tasks}/{task['id']}"
    for method, path in (("POST", alice.tasks), ("PUT", item)):
        for field, cases in (
            ("title", one_line + surrogates),
            ("description", multiline + surrogates),
        ):
            for label, char, status in cases:
                body = {"title": "Buy milk", "description": "semi-skimmed"}
                body[field] = body[field][:3] + char + body[field][3:]
                response = await todo.request(
                    method, path, content=json.dumps(body).encode(), headers=headers
                )
                assert response.status_code == status, (method, field, label, response.text)
                assert_refused(response, field, status)
    after = (await todo.get(alice.tasks, headers=alice.headers)).json()
    assert after == before  # nothing created, nothing changed


async def test_a_description_keeps_its_line_breaks_and_tabs(todo: Client, alice: User) -> None:
    description = "first line\nsecond line\r\n\tindented\u00e9\U0001f600"
    created = await todo.post(
        alice.tasks, json={"title": "Notes", "description": description}, headers=alice.headers
    )
    assert created.status_code == 201, created.text
    read = await todo.get(f"{alice.tasks}/{created.json()['id']}", headers=alice.headers)
    assert read.json()["description"] == description


async def test_path_query_and_headers(todo: Client, alice: User) -> None:
    task = await _task(todo, alice)
    item = f"{alice.tasks}/{task['id']}"
    for label, escaped in URL_ESCAPES:
        for method, path, field in (
            ("GET", f"/api/{alice.id}{escaped}/tasks", "user_id"),
            ("GET", f"{alice.tasks}/{task['id']}{escaped}", "task_id"),
            ("PUT", f"{alice.tasks}/{task['id']}{escaped}", "task_id"),
            ("DELETE", f"{alice.tasks}/{task['id']}{escaped}", "task_id"),
            ("PATCH", f"{alice.tasks}/{task['id']}{escaped}/complete", "task_id"),
            ("GET", f"{alice.tasks}?status=all{escaped}", "status"),
            ("GET", f"{alice.tasks}?limit=1{escaped}", "limit"),
            ("GET", f"{alice.tasks}?offset=0{escaped}", "offset"),
            ("GET", f"{alice.tasks}?other=x{escaped}", "other"),
        ):
            kwargs: dict[str, Any] = {"headers": alice.headers}
            if method == "PUT":
                kwargs["json"] = {"title": "changed"}
            response = await todo.request(method, path, **kwargs)
            assert response.status_code == 422, (label, method, path, response.text)
            assert_refused(response, field)
    for label, char in HEADER_REFUSED:
        response = await todo.get(alice.tasks, headers={**alice.headers, "User-Agent": f"a{char}"})
        assert response.status_code == 422, label
        assert_refused(response, "user-agent")
    # The task is as it was: none of the refused requests reached it.
    read = await todo.get(item, headers=alice.headers)
    assert read.json() == task
