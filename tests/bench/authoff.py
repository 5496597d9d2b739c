"""BENCHMARK ONLY — authentication switched OFF. Never run this anywhere but `make bench`.

The todo service exactly as `todo_service.app.create_app` builds it (same middleware, handler,
database, server), except that its TokenVerifier is a stub: `verify` checks nothing and
returns fixed claims for the user in BENCH_STUB_SUB. The benchmark compares the real service
against this to price token verification on the protected list.

    BENCH_STUB_SUB=<user id> TODO_PORT=… python -m tests.bench.authoff
"""

from __future__ import annotations

import os
import time

import todo_service.app as todo_app
from kit.app import ServedApp
from kit.settings import load_or_exit
from todo_service.config import Settings
from token_verifier import TokenVerifier, VerifiedClaims


class StubVerifierAuthOff(TokenVerifier):
    """BENCH STUB: accepts anything, verifies nothing."""

    async def verify(self, token: str | None) -> VerifiedClaims:
        return _FIXED


_SUB = os.environ.get("BENCH_STUB_SUB", "00000000-0000-0000-0000-000000000000")
_NOW = int(time.time())
_FIXED = VerifiedClaims(
    sub=_SUB,
    sid="bench-stub-session",
    jti="bench-stub",
    iss="bench-stub",
    aud=("todo-api",),
    iat=_NOW,
    exp=_NOW + 86_400,
    claims={"sub": _SUB},
)


def create_app() -> ServedApp:
    """The todo app with the stub verifier in place of the real one (BENCH ONLY)."""
    setattr(todo_app, "TokenVerifier", StubVerifierAuthOff)  # noqa: B010 (patched on purpose)
    return todo_app.create_app()


def main() -> None:
    from kit.server import serve

    settings = load_or_exit(Settings.from_env)
    serve("tests.bench.authoff:create_app", settings.host, settings.port)


if __name__ == "__main__":
    main()
