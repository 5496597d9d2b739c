from __future__ import annotations

from advanced_alchemy.repository import SQLAlchemyAsyncRepository

from todo_service.tasks.models import Task


class TaskRepository(SQLAlchemyAsyncRepository[Task]):
    model_type = Task
