from kit.database import run_env
from todo_service.accounts import models as _accounts  # noqa: F401
from todo_service.database import Base
from todo_service.tasks import models as _tasks  # noqa: F401 - registers the table

run_env(Base.metadata)
