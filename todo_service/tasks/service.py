"""Task rules. Every query names its owner: a task of another user does not exist here."""

from __future__ import annotations

import datetime
import uuid
from typing import Literal

from advanced_alchemy.filters import LimitOffset, OrderBy, StatementFilter
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncEngine

from kit.database import session_factory, single_statement_reads
from kit.problems import ProblemError
from todo_service.tasks.models import Task
from todo_service.tasks.repository import TaskRepository
from todo_service.tasks.schemas import TaskCreate, TaskUpdate

Status = Literal["all", "pending", "completed"]
NOT_FOUND = ProblemError(404, "not_found", "no such task")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class TaskService:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = session_factory(engine)
        # Listing and reading are one statement each: no transaction around them.
        self._reads = session_factory(single_statement_reads(engine))

    async def list(
        self, owner: uuid.UUID, *, status: Status, limit: int, offset: int
    ) -> tuple[list[Task], int]:
        filters: list[StatementFilter | ColumnElement[bool]] = [
            Task.owner_id == owner,
            LimitOffset(limit=limit, offset=offset),
            OrderBy(field_name="created_at", sort_order="desc"),
            OrderBy(field_name="id", sort_order="desc"),
        ]
        if status != "all":
            filters.append(Task.completed == (status == "completed"))
        async with self._reads() as db:
            tasks, total = await TaskRepository(session=db).get_many_and_count(*filters)
        return list(tasks), total

    async def create(self, owner: uuid.UUID, data: TaskCreate) -> Task:
        async with self._sessions.begin() as db:
            return await TaskRepository(session=db).add(
                Task(owner_id=owner, title=data.title, description=data.description)
            )

    async def get(self, owner: uuid.UUID, task_id: uuid.UUID) -> Task:
        async with self._reads() as db:
            return await _owned(TaskRepository(session=db), owner, task_id)

    async def update(self, owner: uuid.UUID, task_id: uuid.UUID, data: TaskUpdate) -> Task:
        async with self._sessions.begin() as db:
            repository = TaskRepository(session=db)
            task = await _owned(repository, owner, task_id)
            task.title = data.title
            if data.description is not None:
                task.description = data.description
            if data.completed is not None:
                task.completed = data.completed
            task.updated_at = _now()
            return await repository.update(task)

    async def toggle(self, owner: uuid.UUID, task_id: uuid.UUID) -> Task:
        async with self._sessions.begin() as db:
            repository = TaskRepository(session=db)
            task = await _owned(repository, owner, task_id)
            task.completed = not task.completed
            task.updated_at = _now()
            return await repository.update(task)

    async def delete(self, owner: uuid.UUID, task_id: uuid.UUID) -> None:
        async with self._sessions.begin() as db:
            repository = TaskRepository(session=db)
            await repository.delete((await _owned(repository, owner, task_id)).id)


async def _owned(repository: TaskRepository, owner: uuid.UUID, task_id: uuid.UUID) -> Task:
    """The task, if it is the owner's; 404 otherwise, whoever else it may belong to."""
    task = await repository.get_one_or_none(id=task_id, owner_id=owner)
    if task is None:
        raise NOT_FOUND
    return task
