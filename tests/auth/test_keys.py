"""The key ring: JWKS content, rotation timing, tokens of retired keys, removal."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from litestar.testing import AsyncTestClient

from auth_service.__main__ import MIGRATIONS
from auth_service.app import create_app
from auth_service.config import Settings
from auth_service.keys.encryption import KeyDecryptionError, KeyEncryptor
from auth_service.keys.ring import KeyRing, RotationTooSoonError
from kit import database
from tests.auth.conftest import STRONG_PASSWORD, unique_email
from tests.auth.test_accounts import header_of
from tests.infra import fresh_postgres_database

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


async def test_jwks_has_public_keys_only(
    client: AsyncTestClient[Any], auth_settings: Settings
) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == f"public, max-age={auth_settings.jwks_max_age}"
    keys = response.json()["keys"]
    assert len(keys) >= 2  # the signing key and the next key
    for key in keys:
        assert not PRIVATE_MEMBERS & set(key), key
        assert key["use"] == "sig"
        assert key["alg"] == "ES256"
        assert key["kty"] == "EC"
        assert key["kid"]


async def test_openid_configuration(client: AsyncTestClient[Any], auth_settings: Settings) -> None:
    config = (await client.get("/.well-known/openid-configuration")).json()
    assert config["issuer"] == auth_settings.issuer
    assert config["jwks_uri"] == f"{auth_settings.issuer}/.well-known/jwks.json"
    assert config["token_endpoint"] == f"{auth_settings.issuer}/oauth/token"
    assert "refresh_token" in config["grant_types_supported"]
    for key in ("jwks_uri", "token_endpoint"):
        assert config[key].startswith(("http://", "https://"))


@pytest.mark.parametrize("alg", ["Ed25519", "RS256", "PS256"])
async def test_other_signing_algorithms(
    alg: str, settings_with: Callable[..., Settings], tmp_path: Any
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/auth.db"
    database.upgrade(url, __import__("auth_service.__main__").__main__.MIGRATIONS)
    settings = settings_with(database_url=url, redis_url=None, signing_alg=alg)
    async with AsyncTestClient(app=create_app(settings)) as client:
        body = (
            await client.post(
                "/auth/register", json={"email": unique_email(), "password": STRONG_PASSWORD}
            )
        ).json()
        assert header_of(body["access_token"])["alg"] == alg
        jwks = (await client.get("/.well-known/jwks.json")).json()
        verified = jwt.decode(body["access_token"], KeySet.import_key_set(jwks), algorithms=[alg])
        assert verified.claims["sub"] == body["user"]["id"]
        for key in jwks["keys"]:
            assert not PRIVATE_MEMBERS & set(key)


async def test_rotation_schedule_and_retired_key_lifetime(
    auth_settings: Settings, tmp_path: Any
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/ring.db"
    database.upgrade(url, __import__("auth_service.__main__").__main__.MIGRATIONS)
    engine = database.create_engine(url)
    clock = FakeClock(1_000_000.0)
    ring = KeyRing(
        database.session_factory(engine),
        KeyEncryptor(secrets.token_bytes(32)),
        alg="ES256",
        access_token_ttl=900,
        rotation_interval=3600,
        jwks_max_age=300,
        now=clock,
    )
    try:
        await ring.maintain()
        first = await ring.reload()
        kids = [key["kid"] for key in first.public_keys]
        assert len(kids) == 2 and first.active.kid in kids
        next_kid = next(kid for kid in kids if kid != first.active.kid)

        # Too soon: the next key was published 0 s ago; verifiers may not have it yet.
        with pytest.raises(RotationTooSoonError):
            await ring.rotate()
        # The schedule does nothing before the rotation interval.
        clock.now += 1800
        assert not await ring.maintain()
        assert (await ring.reload()).active.kid == first.active.kid

        clock.now += 1800  # interval reached, next key published long ago
        assert await ring.maintain()
        second = await ring.reload()
        assert second.active.kid == next_kid  # the published next key, never an unseen one
        kids_now = {key["kid"] for key in second.public_keys}
        assert first.active.kid in kids_now  # retired, still published
        assert len(kids_now) == 3

        clock.now += 900 + 59  # tokens of the retired key may still be alive (leeway)
        await ring.maintain()
        assert first.active.kid in {key["kid"] for key in (await ring.reload()).public_keys}
        clock.now += 2  # now every token it signed has expired
        await ring.maintain()
        assert first.active.kid not in {key["kid"] for key in (await ring.reload()).public_keys}

        forced = await ring.rotate(force=True)
        assert (await ring.reload()).active.kid == forced
    finally:
        await engine.dispose()


@contextlib.contextmanager
def empty_database(storage: str, tmp_path: Path) -> Iterator[str]:
    """A migrated database with no key ring yet, of the mode's kind."""
    if storage == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'ring.db'}"
        database.upgrade(url, MIGRATIONS)
        yield url
        return
    with fresh_postgres_database("ring") as url:
        database.upgrade(url, MIGRATIONS)
        yield url


async def test_concurrent_maintenance_agrees(storage: str, tmp_path: Path) -> None:
    """Several replicas starting at once create exactly one active key between them."""
    key = secrets.token_bytes(32)
    with empty_database(storage, tmp_path) as url:
        engines = [database.create_engine(url) for _ in range(4)]
        rings = [
            KeyRing(
                database.session_factory(engine),
                KeyEncryptor(key),
                alg="ES256",
                access_token_ttl=900,
                rotation_interval=3600,
                jwks_max_age=300,
            )
            for engine in engines
        ]
        try:
            await asyncio.gather(*(ring.maintain() for ring in rings))
            snapshots = await asyncio.gather(*(ring.reload() for ring in rings))
            assert len({snapshot.active.kid for snapshot in snapshots}) == 1
            assert len(snapshots[0].public_keys) == 2
        finally:
            for engine in engines:
                await engine.dispose()


async def test_tokens_of_previous_key_stay_verifiable_after_rotation(
    client: AsyncTestClient[Any], auth_settings: Settings
) -> None:
    before = (
        await client.post(
            "/auth/register", json={"email": unique_email(), "password": STRONG_PASSWORD}
        )
    ).json()["access_token"]
    old_kid = header_of(before)["kid"]
    engine = database.create_engine(auth_settings.database_url)
    ring = KeyRing(
        database.session_factory(engine),
        KeyEncryptor(auth_settings.key_encryption_key),
        alg="ES256",
        access_token_ttl=900,
        rotation_interval=3600,
        jwks_max_age=300,
    )
    try:
        new_kid = await ring.rotate(force=True)
    finally:
        await engine.dispose()
    assert new_kid != old_kid
    # A replica started after the rotation (it reads the ring from the database).
    async with AsyncTestClient(app=create_app(auth_settings)) as replica:
        after = (
            await replica.post(
                "/auth/register", json={"email": unique_email(), "password": STRONG_PASSWORD}
            )
        ).json()["access_token"]
        assert header_of(after)["kid"] == new_kid
        jwks = (await replica.get("/.well-known/jwks.json")).json()
        assert {old_kid, new_kid} <= {key["kid"] for key in jwks["keys"]}
        key_set = KeySet.import_key_set(jwks)
        for token in (before, after):
            jwt.decode(token, key_set, algorithms=["ES256"])
            me = await replica.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200


async def test_wrong_key_encryption_key_cannot_open_keys(auth_settings: Settings) -> None:
    engine = database.create_engine(auth_settings.database_url)
    try:
        ring = KeyRing(
            database.session_factory(engine),
            KeyEncryptor(secrets.token_bytes(32)),
            alg="ES256",
            access_token_ttl=900,
            rotation_interval=3600,
            jwks_max_age=300,
        )
        with pytest.raises(KeyDecryptionError):
            await ring.verify_decryptable()
    finally:
        await engine.dispose()
