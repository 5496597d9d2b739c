"""Task rules. Every query names its owner: a task of another user does not exist here."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from sqlalchemy import ColumnElement, Integer, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kit.database import HotRead, session_factory, single_statement_reads
from kit.problems import ProblemError
from todo_service.tasks.models import Task
from todo_service.tasks.repository import TaskRepository
from todo_service.tasks.schemas import TaskCreate, TaskUpdate

Status = Literal["all", "pending", "completed"]
NOT_FOUND = ProblemError(404, "not_found", "no such task")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class TaskRow(NamedTuple):
    """A task as a list shows it: the columns, without an ORM object around them."""

    id: uuid.UUID
    title: str
    description: str
    completed: bool
    created_at: datetime.datetime
    updated_at: datetime.datetime


def _listing(*where: ColumnElement[bool]) -> tuple[HotRead, HotRead]:
    """A page of the owner's tasks, newest first, with the total beside every row (one
    statement), and the count alone for a page past the end, which has no row to carry it."""
    page = (
        select(*(getattr(Task, name) for name in TaskRow._fields), func.count().over())
        .where(*where)
        .order_by(Task.created_at.desc(), Task.id.desc())
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )
    return HotRead(page), HotRead(select(func.count()).select_from(Task).where(*where))


_MINE = Task.owner_id == bindparam("owner")
# The listing is the todo service's hot path (every page a client shows): it runs as a
# HotRead, without an ORM session, identity map or per-statement compilation.
_ALL = _listing(_MINE)
_BY_STATUS = _listing(_MINE, Task.completed == bindparam("completed"))


class TaskService:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = session_factory(engine)
        # Listing and reading are one statement each: no transaction around them.
        self._read_engine = single_statement_reads(engine)
        self._reads = session_factory(self._read_engine)

    async def list(
        self, owner: uuid.UUID, *, status: Status, limit: int, offset: int
    ) -> tuple[list[TaskRow], int]:
        """One page of the owner's tasks and how many there are in all (with this status)."""
        params: dict[str, Any] = {"owner": owner}
        page, count = _ALL if status == "all" else _BY_STATUS
        if status != "all":
            params["completed"] = status == "completed"
        rows: Sequence[Sequence[Any]] = await page.all(
            self._read_engine, limit=limit, offset=offset, **params
        )
        if rows:
            return [TaskRow(*row[:-1]) for row in rows], int(rows[0][-1])
        found = await count.first(self._read_engine, **params) if offset else None
        return [], int(found[0]) if found else 0

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
