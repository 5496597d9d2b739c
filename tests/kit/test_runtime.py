"""The process-wide adjustments of kit.runtime, checked through an app built like the services'.

If a Litestar upgrade moves the internals kit.runtime replaces, these fail, rather than the
services silently going back to a task group per request."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from litestar import get
from litestar.di import NamedDependency, Provide
from litestar.testing import AsyncTestClient

from kit.app import build_app


def _recorder(name: str, seen: list[tuple[str, asyncio.Task[Any] | None]]) -> Provide:
    async def provide() -> str:
        seen.append((name, asyncio.current_task()))
        return name

    return Provide(provide)


async def test_independent_dependencies_resolve_one_after_another_on_the_request_task() -> None:
    seen: list[tuple[str, asyncio.Task[Any] | None]] = []

    @get("/both")
    async def both(first: NamedDependency[str], second: NamedDependency[str]) -> dict[str, Any]:
        seen.append(("handler", asyncio.current_task()))
        return {"got": [first, second]}

    app = build_app(
        service="probe",
        title="probe",
        route_handlers=[both],
        readiness={},
        dependencies={"first": _recorder("first", seen), "second": _recorder("second", seen)},
    )
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/both")
    assert response.status_code == 200
    assert response.json() == {"got": ["first", "second"]}
    # A batch is a set: its order is not defined, only that each is resolved before the handler.
    assert sorted(name for name, _ in seen[:2]) == ["first", "second"]
    assert seen[2][0] == "handler"
    # A task group would have run each dependency in a task of its own.
    tasks = {task for _, task in seen}
    assert len(tasks) == 1 and None not in tasks


async def test_a_failing_dependency_still_gives_its_own_error() -> None:
    async def refuse() -> str:
        raise ValueError("no")

    @get("/refused")
    async def refused(first: NamedDependency[str], broken: NamedDependency[str]) -> str:
        return first + broken

    app = build_app(
        service="probe",
        title="probe",
        route_handlers=[refused],
        readiness={},
        dependencies={"first": _recorder("first", []), "broken": Provide(refuse)},
    )
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/refused")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_start_up_objects_are_frozen_out_of_the_collector() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    app = build_app(service="probe", title="probe", route_handlers=[], readiness={})
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/health/live")).status_code == 200
        assert gc.get_freeze_count() > 0
