from __future__ import annotations

from advanced_alchemy.repository import SQLAlchemyAsyncRepository

from auth_service.users.models import User


class UserRepository(SQLAlchemyAsyncRepository[User]):
    model_type = User
