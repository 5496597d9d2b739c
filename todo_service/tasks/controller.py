from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIFormat
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter

from kit.openapi import BEARER, problem_responses
from kit.problems import FieldError, ProblemError
from kit.text_input import PathText
from todo_service.tasks.models import Task
from todo_service.tasks.schemas import TaskCreate, TaskPage, TaskUpdate, TaskView
from todo_service.tasks.service import Status, TaskRow, TaskService
from token_verifier import VerifiedClaims, require_scope


def _view(task: Task | TaskRow) -> TaskView:
    return TaskView(
        id=str(task.id),
        title=task.title,
        description=task.description,
        completed=task.completed,
        created_at=task.created_at,
        updated_at=task.updated_at,
    )


READ_SCOPE, WRITE_SCOPE = "tasks:read", "tasks:write"
SCOPES = (READ_SCOPE, WRITE_SCOPE)
_READS = frozenset({"GET", "HEAD"})


def owner_of(request: Request[VerifiedClaims, Any, Any], user_id: PathText) -> uuid.UUID:
    """Whose list this is. A person works in their own list only (the path's user is the
    token's subject). An internal service's token works in any user's list, by its scopes:
    `tasks:read` to read, `tasks:write` to change."""
    claims = request.user
    if claims.is_client:
        require_scope(claims, READ_SCOPE if request.method in _READS else WRITE_SCOPE)
        try:
            return uuid.UUID(user_id)
        except ValueError:
            raise FieldError("user_id", "not a user id (UUID)") from None
    if user_id != claims.sub:
        raise ProblemError(403, "forbidden", "this list belongs to another user")
    try:
        return uuid.UUID(claims.sub)
    except ValueError:
        raise ProblemError(403, "forbidden", "token subject is not a user id") from None


# Documented as a UUID, read as text: a foreign list must be 403 before the id is judged.
TaskId = Annotated[str, PathParameter(format=OpenAPIFormat.UUID)]


def task_uuid(task_id: TaskId, owner: NamedDependency[uuid.UUID]) -> uuid.UUID:
    """The task id of the path. Depends on `owner` so that a foreign list is 403 before the
    id's syntax is looked at."""
    try:
        return uuid.UUID(task_id)
    except ValueError:
        raise FieldError("task_id", "not a task id (UUID)") from None


class TaskController(Controller):
    path = "/api/{user_id:str}/tasks"
    tags = ["tasks"]
    security = BEARER

    @get("/", responses=problem_responses(401, 403, 503))
    async def list_tasks(
        self,
        owner: NamedDependency[uuid.UUID],
        tasks: NamedDependency[TaskService],
        status: FromQuery[Status] = "all",
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        offset: Annotated[int, QueryParameter(ge=0, le=1_000_000)] = 0,
    ) -> TaskPage:
        """The caller's tasks, newest first."""
        items, total = await tasks.list(owner, status=status, limit=limit, offset=offset)
        return TaskPage(items=[_view(task) for task in items], total=total)

    @post("/", status_code=201, responses=problem_responses(400, 401, 403, 413, 503))
    async def create_task(
        self,
        owner: NamedDependency[uuid.UUID],
        tasks: NamedDependency[TaskService],
        data: JSONBody[TaskCreate],
    ) -> TaskView:
        return _view(await tasks.create(owner, data))

    @get("/{task_id:str}", responses=problem_responses(401, 403, 404, 503))
    async def get_task(
        self,
        owner: NamedDependency[uuid.UUID],
        task: NamedDependency[uuid.UUID],
        tasks: NamedDependency[TaskService],
    ) -> TaskView:
        return _view(await tasks.get(owner, task))

    @put("/{task_id:str}", responses=problem_responses(400, 401, 403, 404, 413, 503))
    async def update_task(
        self,
        owner: NamedDependency[uuid.UUID],
        task: NamedDependency[uuid.UUID],
        tasks: NamedDependency[TaskService],
        data: JSONBody[TaskUpdate],
    ) -> TaskView:
        return _view(await tasks.update(owner, task, data))

    @delete("/{task_id:str}", status_code=204, responses=problem_responses(401, 403, 404, 503))
    async def delete_task(
        self,
        owner: NamedDependency[uuid.UUID],
        task: NamedDependency[uuid.UUID],
        tasks: NamedDependency[TaskService],
    ) -> None:
        await tasks.delete(owner, task)

    @patch("/{task_id:str}/complete", responses=problem_responses(401, 403, 404, 503))
    async def toggle_task(
        self,
        owner: NamedDependency[uuid.UUID],
        task: NamedDependency[uuid.UUID],
        tasks: NamedDependency[TaskService],
    ) -> TaskView:
        """Completion toggled."""
        return _view(await tasks.toggle(owner, task))
