"""`python -m auth_service serve | migrate | rotate-keys [--force] | check-keys | clients … |
users …`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from auth_service.clients import cli as clients_cli
from auth_service.config import Settings
from auth_service.keys.encryption import KeyDecryptionError, KeyEncryptor
from auth_service.keys.ring import KeyRing, RotationTooSoonError
from auth_service.users import cli as users_cli
from kit import database
from kit.settings import fail, load_or_exit

MIGRATIONS = Path(__file__).parent / "migrations"


def _ring(settings: Settings) -> tuple[KeyRing, AsyncEngine]:
    engine = database.create_engine(settings.database_url)
    ring = KeyRing(
        database.session_factory(engine),
        KeyEncryptor(settings.key_encryption_key),
        alg=settings.signing_alg,
        access_token_ttl=settings.access_token_ttl,
        rotation_interval=settings.key_rotation_interval,
        jwks_max_age=settings.jwks_max_age,
    )
    return ring, engine


async def _check_keys(settings: Settings) -> None:
    ring, engine = _ring(settings)
    try:
        await ring.verify_decryptable()
    finally:
        await engine.dispose()


async def _rotate(settings: Settings, force: bool) -> str:
    ring, engine = _ring(settings)
    try:
        await ring.verify_decryptable()
        await ring.maintain()
        return await ring.rotate(force=force)
    finally:
        await engine.dispose()


def _check_keys_or_exit(settings: Settings) -> None:
    try:
        asyncio.run(_check_keys(settings))
    except KeyDecryptionError as error:
        fail(
            "configuration error: AUTH_KEY_ENCRYPTION_KEY cannot decrypt the stored signing key "
            f"{error} (wrong key?); refusing to start rather than sign with a new key"
        )
    except Exception as error:
        fail(
            f"cannot read the signing keys from AUTH_DATABASE_URL: {type(error).__name__}: {error}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m auth_service")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP service")
    commands.add_parser("migrate", help="apply database migrations")
    rotate = commands.add_parser("rotate-keys", help="make the next signing key active now")
    rotate.add_argument("--force", action="store_true", help="rotate even if the next key is new")
    commands.add_parser("check-keys", help="check the stored keys open with this key")
    clients_cli.add_parser(commands)
    users_cli.add_parser(commands)
    args = parser.parse_args()
    settings = load_or_exit(Settings.from_env)

    if args.command == "clients":
        clients_cli.main(args, settings)
    elif args.command == "users":
        users_cli.main(args, settings)
    elif args.command == "migrate":
        database.upgrade(settings.database_url, MIGRATIONS)
    elif args.command == "check-keys":
        _check_keys_or_exit(settings)
        print("signing keys OK")
    elif args.command == "rotate-keys":
        try:
            kid = asyncio.run(_rotate(settings, args.force))
        except RotationTooSoonError as error:
            fail(f"not rotated: {error}")
        except KeyDecryptionError as error:
            fail(f"not rotated: AUTH_KEY_ENCRYPTION_KEY cannot decrypt key {error}")
        print(f"rotated: active key is now {kid}")
    else:
        _check_keys_or_exit(settings)
        from kit.server import serve

        serve("auth_service.app:create_app", settings.host, settings.port)


if __name__ == "__main__":
    main()
