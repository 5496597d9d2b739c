# mypy: ignore-errors
"""The peer for `make bench`: the same three operations on the stack most people would reach for.

FastAPI + fastapi-users (JWT strategy, ES256 like ours, SQLAlchemy user database on PostgreSQL),
Argon2id at the service's parameters (m=19456 KiB, t=2, p=1) through pwdlib. Written the way the
fastapi-users documentation shows, without tuning. Runs from its own venv (tests/artifacts/
peer-venv, from requirements.txt beside this file), never imported by the project.

    PEER_DATABASE_URL=postgresql+asyncpg://… uvicorn peer_app:app --loop uvloop --http httptools

Routes: POST /auth/register (JSON), POST /auth/jwt/login (form: username, password),
GET/POST /api/{user_id}/tasks (bearer token; a user's own tasks, newest first, with the total),
GET /health/live.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, FastAPI, HTTPException
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, JWTStrategy
from fastapi_users.db import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from fastapi_users.password import PasswordHelper
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import BaseModel
from sqlalchemy import Boolean, DateTime, ForeignKey, String, Uuid, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DATABASE_URL = os.environ["PEER_DATABASE_URL"]
_private = ec.generate_private_key(ec.SECP256R1())
PRIVATE_PEM = _private.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
PUBLIC_PEM = (
    _private.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


class Task(Base):
    __tablename__ = "task"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(2000), default="")
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    updated_at: Mapped[datetime.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


engine = create_async_engine(DATABASE_URL, pool_size=10, max_overflow=10)
session_maker = async_sessionmaker(engine, expire_on_commit=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    async with session_maker() as session:
        yield session


async def get_user_db(session: Annotated[AsyncSession, Depends(get_session)]):
    yield SQLAlchemyUserDatabase(session, User)


PASSWORDS = PasswordHelper(
    PasswordHash((Argon2Hasher(time_cost=2, memory_cost=19_456, parallelism=1, hash_len=32),))
)


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    reset_password_token_secret = "unused"
    verification_token_secret = "unused"


async def get_user_manager(user_db: Annotated[SQLAlchemyUserDatabase, Depends(get_user_db)]):
    yield UserManager(user_db, PASSWORDS)


def get_jwt_strategy() -> JWTStrategy:
    return JWTStrategy(
        secret=PRIVATE_PEM, lifetime_seconds=900, algorithm="ES256", public_key=PUBLIC_PEM
    )


auth_backend = AuthenticationBackend(
    name="jwt", transport=BearerTransport(tokenUrl="auth/jwt/login"), get_strategy=get_jwt_strategy
)
fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [auth_backend])
current_active_user = fastapi_users.current_user(active=True)


class UserRead(schemas.BaseUser[uuid.UUID]):
    pass


class UserCreate(schemas.BaseUserCreate):
    pass


class TaskCreate(BaseModel):
    title: str
    description: str = ""


class TaskView(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    completed: bool
    created_at: datetime.datetime
    updated_at: datetime.datetime


class TaskPage(BaseModel):
    items: list[TaskView]
    total: int


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)
app.include_router(fastapi_users.get_auth_router(auth_backend), prefix="/auth/jwt")
app.include_router(fastapi_users.get_register_router(UserRead, UserCreate), prefix="/auth")


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


def _owner(user_id: uuid.UUID, user: User) -> uuid.UUID:
    if user_id != user.id:
        raise HTTPException(status_code=403, detail="this list belongs to another user")
    return user.id


@app.get("/api/{user_id}/tasks")
async def list_tasks(
    user_id: uuid.UUID,
    user: Annotated[User, Depends(current_active_user)],
    session: Annotated[AsyncSession, Depends(get_session)],
    limit: int = 20,
    offset: int = 0,
) -> TaskPage:
    owner = _owner(user_id, user)
    rows = await session.scalars(
        select(Task)
        .where(Task.user_id == owner)
        .order_by(Task.created_at.desc())
        .limit(limit)
        .offset(offset)
    )
    total = await session.scalar(
        select(func.count()).select_from(Task).where(Task.user_id == owner)
    )
    return TaskPage(
        items=[TaskView.model_validate(t, from_attributes=True) for t in rows], total=total or 0
    )


@app.post("/api/{user_id}/tasks", status_code=201)
async def create_task(
    user_id: uuid.UUID,
    data: TaskCreate,
    user: Annotated[User, Depends(current_active_user)],
    session: Annotated[AsyncSession, Depends(get_session)],
) -> TaskView:
    task = Task(user_id=_owner(user_id, user), title=data.title, description=data.description)
    session.add(task)
    await session.commit()
    await session.refresh(task)
    return TaskView.model_validate(task, from_attributes=True)
