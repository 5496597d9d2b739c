"""The rules of administration. Each change to the auth database is audited in its own
transaction; ending sessions also writes the revocation list, so access tokens stop at every
verifier within seconds."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.audit.log import AuditLog
from auth_service.events.outbox import Outbox
from auth_service.revocations.log import RevocationLog
from auth_service.sessions.service import SessionService
from auth_service.users.models import User
from auth_service.users.service import AccountService
from kit.problems import FieldError, ProblemError

ROLE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
MAX_ROLES = 16
NOT_FOUND = ProblemError(404, "not_found", "no such user")


def _user_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NOT_FOUND from None


def summary(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "roles": list(user.roles or []),
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat(),
    }


class AdminService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        session_service: SessionService,
        accounts: AccountService,
        revocations: RevocationLog,
        audit: AuditLog,
        outbox: Outbox,
    ) -> None:
        self._sessions = sessions
        self._session_service = session_service
        self._accounts = accounts
        self._revocations = revocations
        self._audit = audit
        self._outbox = outbox

    async def users(
        self, *, q: str, after: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """By email prefix (or an exact id), in email order; `after` is the last email seen."""
        query = select(User).order_by(User.email).limit(limit)
        text = q.strip().lower()
        try:
            query = query.where(User.id == uuid.UUID(text))
        except ValueError:
            if text:
                escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                query = query.where(User.email.like(f"{escaped}%", escape="\\"))
        if after:
            query = query.where(User.email > after)
        async with self._sessions() as db:
            users = list((await db.execute(query)).scalars())
        items = [summary(user) for user in users]
        return items, (users[-1].email if len(users) == limit else None)

    async def user(self, user_id: str) -> dict[str, Any]:
        async with self._sessions() as db:
            user = await db.get(User, _user_id(user_id))
        if user is None:
            raise NOT_FOUND
        sessions = await self._session_service.list_sessions(user_id=str(user.id))
        return {
            **summary(user),
            "email_verified": False,  # no verification flow yet (account lifecycle)
            "factors": [],  # no second factors yet
            "sessions": [
                {
                    "id": info.id,
                    "created_at": info.created_at,
                    "last_used_at": info.last_used_at,
                    "expires_at": info.expires_at,
                    "user_agent": info.user_agent,
                    "ip": info.ip,
                }
                for info in sessions
            ],
        }

    async def _change(self, user_id: str, actor: str, event: str, **values: Any) -> User:
        async with self._sessions.begin() as db:
            user = await db.get(User, _user_id(user_id), with_for_update=True)
            if user is None:
                raise NOT_FOUND
            for name, value in values.items():
                setattr(user, name, value)
            self._audit.add(db, event, subject=str(user.id), actor=actor, data=dict(values))
            if event in ("user.disabled", "user.enabled"):
                self._outbox.add(db, event, subject=str(user.id))
        return user

    async def set_disabled(self, user_id: str, disabled: bool, *, actor: str) -> None:
        event = "user.disabled" if disabled else "user.enabled"
        await self._change(user_id, actor, event, disabled=disabled)
        if disabled:
            await self._end_everything(user_id, actor=actor, reason="user_disabled")

    async def _end_everything(self, user_id: str, *, actor: str, reason: str) -> None:
        """Every session, and every token issued until now (however it was issued)."""
        await self._session_service.logout_all(user_id=user_id, reason=reason, actor=actor)
        await self._revocations.subject_cut_off(user_id)

    async def end_sessions(self, user_id: str, *, actor: str) -> None:
        await self.user_exists(user_id)
        await self._end_everything(user_id, actor=actor, reason="admin")

    async def reset_factors(self, user_id: str, *, actor: str) -> None:
        """Removes every second factor (there are none to remove until they exist)."""
        async with self._sessions.begin() as db:
            if await db.get(User, _user_id(user_id)) is None:
                raise NOT_FOUND
            self._audit.add(db, "mfa.reset", subject=user_id, actor=actor, data={"removed": 0})

    async def set_roles(self, user_id: str, roles: Sequence[str], *, actor: str) -> dict[str, Any]:
        unique = sorted(set(roles))
        if len(unique) > MAX_ROLES or not all(ROLE.fullmatch(role) for role in unique):
            raise FieldError("roles", "roles are up to 16 names of a-z, 0-9, '_' and '-'")
        user = await self._change(user_id, actor, "roles.changed", roles=unique)
        # Tokens carry the roles of their session's sign-in: a change ends every session, so
        # each token issued after it says the new roles, and a removed role stops within
        # seconds everywhere.
        await self._end_everything(user_id, actor=actor, reason="roles_changed")
        return summary(user)

    async def delete(self, user_id: str, *, actor: str) -> None:
        """As `DELETE /auth/me`, without the password."""
        if not await self._accounts.close(str(_user_id(user_id)), actor=actor):
            raise NOT_FOUND

    async def user_exists(self, user_id: str) -> None:
        async with self._sessions() as db:
            if await db.get(User, _user_id(user_id)) is None:
                raise NOT_FOUND
