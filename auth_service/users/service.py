"""Account rules: who may register, who is who at login, and how a password changes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import structlog
from advanced_alchemy.exceptions import IntegrityError as AdvancedAlchemyIntegrityError
from limits import parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from prometheus_client import Counter
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from auth_service.audit.log import AuditLog
from auth_service.events.outbox import Outbox
from auth_service.passwords.hashing import PasswordHashing
from auth_service.passwords.policy import normalise
from auth_service.revocations.log import RevocationLog
from auth_service.sessions.service import ClientInfo, SessionService, SignedIn
from auth_service.users.email import normalise_email
from auth_service.users.models import User
from auth_service.users.repository import UserRepository, find_credentials
from kit.database import session_factory, single_statement_reads
from kit.problems import FieldError, ProblemError

LOGINS = Counter("auth_logins_total", "Login attempts by result", ["result"])
REGISTRATIONS = Counter("auth_registrations_total", "Registrations by result", ["result"])
log = structlog.get_logger("accounts")

EMAIL_CACHE_SIZE = 100_000
INVALID_CREDENTIALS = ProblemError(401, "invalid_credentials", "email or password is incorrect")


class AccountService:
    def __init__(
        self,
        engine: AsyncEngine,
        passwords: PasswordHashing,
        session_service: SessionService,
        login_limiter: MovingWindowRateLimiter,
        audit: AuditLog,
        outbox: Outbox,
        revocations: RevocationLog,
        *,
        login_failure_limit: str,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._audit = audit
        self._outbox = outbox
        self._revocations = revocations
        self._reads = single_statement_reads(engine)
        self._sessions = session_factory(engine)
        self._passwords = passwords
        self._session_service = session_service
        self._limiter = login_limiter
        self._failure_limit = parse_many(login_failure_limit)
        self._now = now
        self._emails: dict[str, str] = {}

    async def register(self, email: str, password: str, client: ClientInfo) -> SignedIn:
        address = normalise_email(email)
        password_hash = await self._passwords.hash_new("password", password, context=(address,))
        try:
            async with self._sessions() as session, session.begin():
                user = await UserRepository(session=session).add(
                    User(email=address, password_hash=password_hash)
                )
        except (IntegrityError, AdvancedAlchemyIntegrityError):
            REGISTRATIONS.labels("email_taken").inc()
            raise ProblemError(409, "email_taken", "this email cannot be registered") from None
        REGISTRATIONS.labels("created").inc()
        log.info("user_registered", user_id=str(user.id))
        signed_in = await self._session_service.start(
            user_id=str(user.id), email=user.email, client=client
        )
        self._audit.record(
            "user.registered",
            subject=str(user.id),
            data={"session_id": signed_in.refresh.session.id},
        )
        return signed_in

    async def login(self, email: str, password: str, client: ClientInfo) -> SignedIn:
        # A malformed email cannot belong to anyone: same answer as a wrong password, and the
        # same cost (a dummy verify), so the body, status and timing say nothing.
        try:
            address = normalise_email(email)
        except FieldError:
            address = email.strip().lower()[:320]
        try:
            await self._refuse_if_locked(address)
        except ProblemError:
            self._audit.record("login.failed", subject=None, data={"reason": "rate_limited"})
            raise
        found = await find_credentials(self._reads, address)
        secret = normalise(password)[:1024]
        matched = await self._passwords.verify(found.password_hash if found else None, secret)
        subject = str(found.user_id) if found is not None else None
        if found is None or not matched:
            await self._count_failure(address)
            LOGINS.labels("invalid_credentials").inc()
            self._audit.record(
                "login.failed", subject=subject, data={"reason": "invalid_credentials"}
            )
            raise INVALID_CREDENTIALS
        if found.disabled:  # said only to whoever knows the password
            LOGINS.labels("disabled").inc()
            self._audit.record("login.failed", subject=subject, data={"reason": "account_disabled"})
            raise ProblemError(403, "account_disabled", "this account is disabled")
        if self._passwords.needs_rehash(found.password_hash):
            await self._store_hash(found.user_id, await self._passwords.hash(secret))
        LOGINS.labels("success").inc()
        signed_in = await self._session_service.start(
            user_id=str(found.user_id), email=found.email, client=client, roles=found.roles
        )
        self._audit.record(
            "login.succeeded",
            subject=subject,
            data={"method": "password", "session_id": signed_in.refresh.session.id},
        )
        return signed_in

    async def change_password(self, user_id: str, session_id: str, current: str, new: str) -> None:
        user = await self.get(user_id)
        if not await self._passwords.verify(user.password_hash, normalise(current)[:1024]):
            raise ProblemError(401, "invalid_credentials", "the current password is incorrect")
        new_hash = await self._passwords.hash_new("new_password", new, context=(user.email,))
        await self._store_hash(user.id, new_hash, audited="password.changed")
        await self._session_service.end_other_sessions(user_id=user_id, keep_session_id=session_id)
        log.info("password_changed", user_id=user_id)

    async def delete_own(self, user_id: str, current_password: str) -> None:
        """`DELETE /auth/me`: the password again, then the account closes."""
        user = await self.get(user_id)
        if not await self._passwords.verify(user.password_hash, normalise(current_password)[:1024]):
            raise ProblemError(401, "invalid_credentials", "the current password is incorrect")
        await self.close(user_id, actor=user_id)

    async def close(self, user_id: str, *, actor: str) -> bool:
        """The account goes: its row, with a `user.deleted` event for the services that hold
        its data and an audit entry in the same transaction; then its sessions, and every
        token issued until now at every verifier. False when there was no such account."""
        try:
            key = uuid.UUID(user_id)
        except ValueError:
            return False
        async with self._sessions() as session, session.begin():
            result = await session.execute(delete(User).where(User.id == key))
            if not getattr(result, "rowcount", 0):
                return False
            self._outbox.add(session, "user.deleted", subject=user_id)
            self._audit.add(session, "user.deleted", subject=user_id, actor=actor)
        self._emails.pop(user_id, None)
        await self._session_service.logout_all(user_id=user_id, reason="user_deleted", actor=actor)
        await self._revocations.subject_cut_off(user_id)
        log.info("user_deleted", user_id=user_id)
        return True

    async def get(self, user_id: str) -> User:
        try:
            key = uuid.UUID(user_id)
        except ValueError:
            raise ProblemError(401, "token_invalid", "the token's subject is unknown") from None
        async with self._sessions() as session:
            user = await UserRepository(session=session).get_one_or_none(id=key)
        if user is None:
            raise ProblemError(401, "token_invalid", "the token's subject is unknown")
        return user

    async def email_of(self, user_id: str) -> str | None:
        """The user's email for a token response. Every refresh needs it, and an email never
        changes here (there is no route that changes or deletes one), so it is remembered: a
        refresh then costs no SQL query. A route that changes emails must forget the entry."""
        email = self._emails.get(user_id)
        if email is not None:
            return email
        try:
            email = (await self.get(user_id)).email
        except ProblemError:
            return None
        if len(self._emails) >= EMAIL_CACHE_SIZE:
            self._emails.pop(next(iter(self._emails)))
        self._emails[user_id] = email
        return email

    async def _store_hash(
        self, user_id: uuid.UUID, password_hash: str, *, audited: str | None = None
    ) -> None:
        async with self._sessions() as session, session.begin():
            repository = UserRepository(session=session)
            user = await repository.get(user_id)
            user.password_hash = password_hash
            await repository.update(user)
            if audited is not None:
                self._audit.add(session, audited, subject=str(user_id))

    def _lockout_key(self, address: str) -> str:
        return f"login-failures:{address}"

    async def _refuse_if_locked(self, address: str) -> None:
        key = self._lockout_key(address)
        for item in self._failure_limit:
            if not await self._limiter.test(item, key):
                reset_at, _ = await self._limiter.get_window_stats(item, key)
                retry_after = max(1, int(reset_at - time.time()) + 1)
                LOGINS.labels("locked").inc()
                raise ProblemError(
                    429,
                    "rate_limited",
                    "too many failed logins for this account, try again later",
                    headers={"Retry-After": str(retry_after)},
                )

    async def _count_failure(self, address: str) -> None:
        key = self._lockout_key(address)
        for item in self._failure_limit:
            await self._limiter.hit(item, key)
