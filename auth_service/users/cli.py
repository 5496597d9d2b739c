"""`python -m auth_service users grant-admin EMAIL | revoke-admin EMAIL`: the first admin
comes from here. As through the admin API, a change of roles ends the user's sessions (and
their access tokens at every verifier), so every later token carries the new roles."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from sqlalchemy import select

from auth_service.audit.log import AuditLog
from auth_service.config import Settings
from auth_service.revocations.log import RevocationLog
from auth_service.sessions.factory import open_store
from auth_service.users.email import normalise_email
from auth_service.users.models import User
from kit import database
from kit.problems import FieldError

ADMIN = "admin"


def add_parser(commands: Any) -> None:
    users = commands.add_parser("users", help="manage users' roles")
    actions = users.add_subparsers(dest="action", required=True)
    for action in ("grant-admin", "revoke-admin"):
        actions.add_parser(action).add_argument("email")


async def _set_admin(settings: Settings, email: str, grant: bool) -> str:
    engine = database.create_engine(settings.database_url)
    sessions = database.session_factory(engine)
    store = open_store(settings, sessions)
    try:
        async with sessions.begin() as db:
            query = select(User).where(User.email == email).with_for_update()
            user = (await db.execute(query)).scalar_one_or_none()
            if user is None:
                raise LookupError(f"no user {email}")
            roles = set(user.roles or [])
            roles = roles | {ADMIN} if grant else roles - {ADMIN}
            user.roles = sorted(roles)
            AuditLog(sessions, retention=settings.audit_retention).add(
                db, "roles.changed", subject=str(user.id), actor="cli", data={"roles": user.roles}
            )
            user_id = str(user.id)
        revocations = RevocationLog(sessions, access_token_ttl=settings.access_token_ttl)
        await revocations.sessions_ended(await store.revoke_all(user_id=user_id, now=time.time()))
        await revocations.subject_cut_off(user_id)
        return user_id
    finally:
        await store.close()
        await engine.dispose()


def main(args: Any, settings: Settings) -> None:
    try:
        email = normalise_email(args.email)
    except FieldError:
        print(f"users: not an email address: {args.email!r}", file=sys.stderr)
        raise SystemExit(2) from None
    grant = args.action == "grant-admin"
    try:
        user_id = asyncio.run(_set_admin(settings, email, grant))
    except LookupError as error:
        print(f"users: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except Exception as error:
        print(f"users: failed: {type(error).__name__}: {str(error)[:200]}", file=sys.stderr)
        raise SystemExit(1) from None
    verb = "is now an admin" if grant else "is no longer an admin"
    print(f"{email} ({user_id}) {verb}; their sessions were ended")
