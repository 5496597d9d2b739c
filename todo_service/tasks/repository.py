from __future__ import annotations

from kit.database import Repository
from todo_service.tasks.models import Task


class TaskRepository(Repository[Task]):
    model_type = Task
