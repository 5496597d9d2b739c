from __future__ import annotations

from auth_service.users.models import User
from kit.database import Repository


class UserRepository(Repository[User]):
    model_type = User
