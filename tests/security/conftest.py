"""Fixtures for the attack catalogue.

The todo fixtures (`todo` against a real auth process, in both storage modes; `alice`, `bob`)
are the ones of tests/todo, re-exported here. A second, trusted key set of our own serves the
attacks that need a *valid* signature: the auth service's private key never leaves it, so
claim-level attacks are signed by keys we publish in a static JWKS, verified both by a bare
TokenVerifier and by a second in-process todo app that fetches that JWKS over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from kit import database
from tests.infra import ServiceProcess
from tests.security.forge import AUDIENCE, ISSUER, KeyServer, SigningKey, segment
from tests.todo.conftest import (
    User,
    alice,
    bob,
    register_user,
    todo,
    todo_app,
    todo_postgres_url,
    todo_settings,
)
from todo_service.__main__ import MIGRATIONS
from todo_service.app import create_app
from todo_service.config import Settings
from token_verifier import TokenVerifier
from token_verifier.keys import StaticKeys

__all__ = [
    "alice",
    "bob",
    "todo",
    "todo_app",
    "todo_postgres_url",
    "todo_settings",
]

Client = AsyncTestClient[Any]


@dataclass(frozen=True)
class Victim:
    """A user of the real auth service, its genuine token taken apart, and the real JWKS."""

    user: User
    token: str
    header: dict[str, Any]
    claims: dict[str, Any]
    jwks: dict[str, Any]

    @property
    def kid(self) -> str:
        return str(self.header["kid"])

    @property
    def jwk(self) -> dict[str, Any]:
        """The public JWK of the key that signed the victim's token."""
        return next(key for key in self.jwks["keys"] if key["kid"] == self.kid)

    @property
    def tasks(self) -> str:
        return self.user.tasks


@pytest.fixture(scope="module")
def victim(auth_server: ServiceProcess) -> Victim:
    user = register_user(auth_server, "victim")
    jwks = httpx.get(f"{auth_server.url}/.well-known/jwks.json").json()
    return Victim(
        user=user,
        token=user.access_token,
        header=segment(user.access_token, 0),
        claims=segment(user.access_token, 1),
        jwks=jwks,
    )


@pytest.fixture(scope="session")
async def auth_http(auth_server: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    """Plain HTTP to the real auth process (for /auth/me). One client for the session: each
    new client builds a TLS context, which would be most of a forged token's cost."""
    async with httpx.AsyncClient(base_url=auth_server.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def attacker_server() -> Iterator[KeyServer]:
    """The attacker's key server (jku/x5u targets). No verifier may ever call it."""
    yield from KeyServer.running()


# --- The trusted static key set ---------------------------------------------------------------


@dataclass(frozen=True)
class TrustedKeys:
    es256: SigningKey
    rs256: SigningKey
    ps256: SigningKey
    ed25519: SigningKey

    @property
    def all(self) -> tuple[SigningKey, ...]:
        return (self.es256, self.rs256, self.ps256, self.ed25519)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.all]}


@pytest.fixture(scope="session")
def trusted() -> TrustedKeys:
    return TrustedKeys(
        es256=SigningKey.generate("ES256", "trusted-es256"),
        rs256=SigningKey.generate("RS256", "trusted-rs256"),
        ps256=SigningKey.generate("PS256", "trusted-ps256"),
        ed25519=SigningKey.generate("Ed25519", "trusted-ed25519"),
    )


@pytest.fixture(scope="session")
def trusted_jwks_url(trusted: TrustedKeys) -> Iterator[str]:
    for server in KeyServer.running():
        yield server.publish("/jwks.json", json.dumps(trusted.jwks()).encode())


@pytest.fixture
def static_verifier(trusted: TrustedKeys) -> TokenVerifier:
    """The reusable verifier, unit level, over the trusted keys."""
    return TokenVerifier(StaticKeys(trusted.jwks()), issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture(scope="module")
async def static_todo(
    trusted_jwks_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Client]:
    """A second todo app whose JWKS is the trusted static key set."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('static-todo') / 'todo.db'}"
    database.upgrade(url, MIGRATIONS)
    settings = Settings(database_url=url, jwks_url=trusted_jwks_url)
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client
