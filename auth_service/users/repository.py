from __future__ import annotations

import uuid
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine

from auth_service.users.models import User
from kit.database import Repository


class UserRepository(Repository[User]):
    model_type = User


class StoredCredentials(NamedTuple):
    user_id: uuid.UUID
    email: str
    password_hash: str


_CREDENTIALS_BY_EMAIL = select(User.id, User.email, User.password_hash).where(
    User.email == bindparam("email")
)


async def find_credentials(engine: AsyncEngine, email: str) -> StoredCredentials | None:
    """What a login needs, by normalised email: one plain query with no ORM session, because
    every login pays for it (measured: a third less CPU than the repository's lookup)."""
    async with engine.connect() as connection:
        row = (await connection.execute(_CREDENTIALS_BY_EMAIL, {"email": email})).first()
    return None if row is None else StoredCredentials(*row)
