"""Auth service settings from the environment (see the configuration table in README.md)."""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kit.settings import ConfigError, Env

SIGNING_ALGORITHMS = ("ES256", "Ed25519", "RS256", "PS256")
DEFAULT_KEK_FILE = Path(".data/key-encryption-key")


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///.data/auth.db"
    redis_url: str | None = None
    redis_prefix: str = "auth:"
    issuer: str = "http://127.0.0.1:8000"
    audience: tuple[str, ...] = ("todo-api",)
    access_token_ttl: int = 900
    refresh_token_ttl: int = 1_209_600
    session_max_age: int = 2_592_000
    refresh_reuse_grace: int = 10
    signing_alg: str = "ES256"
    key_encryption_key: bytes = field(default=b"\0" * 32, repr=False)
    key_rotation_interval: int = 30 * 86_400
    key_check_interval: int = 60
    jwks_max_age: int = 300
    login_failure_limit: str = "10/15minutes"
    argon2_memory_kib: int = 19_456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    hash_workers: int = 2
    hash_queue: int = 32
    first_party_client_id: str = "todo-app"
    audit_retention: int = 7_776_000
    host: str = "127.0.0.1"
    port: int = 8001

    @property
    def cookie_secure(self) -> bool:
        """`Secure` cookies unless the issuer is plain-http loopback (local development)."""
        lowered = self.issuer.lower()
        loopback = ("http://127.0.0.1", "http://localhost", "http://[::1]")
        return not lowered.startswith(loopback)

    @classmethod
    def from_env(cls, env: Env | None = None) -> Settings:
        env = env or Env()
        access_ttl = env.positive_int("AUTH_ACCESS_TOKEN_TTL", 900)
        refresh_ttl = env.positive_int("AUTH_REFRESH_TOKEN_TTL", 1_209_600)
        max_age = env.positive_int("AUTH_SESSION_MAX_AGE", 2_592_000)
        jwks_max_age = env.positive_int("AUTH_JWKS_MAX_AGE", 300)
        rotation = env.positive_int("AUTH_KEY_ROTATION_INTERVAL", 30 * 86_400)
        if rotation <= jwks_max_age:
            raise ConfigError(
                "AUTH_KEY_ROTATION_INTERVAL",
                f"must be longer than AUTH_JWKS_MAX_AGE ({jwks_max_age}s) so a key is published "
                "before it signs",
            )
        return cls(
            database_url=env.url(
                "AUTH_DATABASE_URL",
                cls.database_url,
                ("sqlite+aiosqlite", "postgresql+asyncpg"),
            ),
            redis_url=env.optional_url("AUTH_REDIS_URL", ("redis", "rediss", "unix")),
            redis_prefix=env.str("AUTH_REDIS_PREFIX", "auth:"),
            issuer=env.url("AUTH_ISSUER", cls.issuer, ("http", "https")).rstrip("/"),
            audience=_audience(env),
            access_token_ttl=access_ttl,
            refresh_token_ttl=refresh_ttl,
            session_max_age=max_age,
            refresh_reuse_grace=env.non_negative_int("AUTH_REFRESH_REUSE_GRACE", 10),
            signing_alg=env.choice("AUTH_SIGNING_ALG", "ES256", SIGNING_ALGORITHMS),
            key_encryption_key=_key_encryption_key(env),
            key_rotation_interval=rotation,
            key_check_interval=env.positive_int("AUTH_KEY_CHECK_INTERVAL", 60),
            jwks_max_age=jwks_max_age,
            login_failure_limit=env.rate_limit("AUTH_LOGIN_FAILURE_LIMIT", "10/15minutes"),
            argon2_memory_kib=env.positive_int("AUTH_ARGON2_MEMORY_KIB", 19_456),
            argon2_time_cost=env.positive_int("AUTH_ARGON2_TIME_COST", 2),
            argon2_parallelism=env.positive_int("AUTH_ARGON2_PARALLELISM", 1),
            hash_workers=env.positive_int("AUTH_HASH_WORKERS", os.cpu_count() or 2),
            hash_queue=env.non_negative_int("AUTH_HASH_QUEUE", 32),
            first_party_client_id=_first_party_client_id(env),
            audit_retention=env.positive_int("AUTH_AUDIT_RETENTION", 7_776_000),
            host=env.str("AUTH_HOST", "127.0.0.1"),
            port=env.port("AUTH_PORT", 8001),
        )


def _first_party_client_id(env: Env) -> str:
    value = env.str("AUTH_FIRST_PARTY_CLIENT_ID", "todo-app")
    if not re.fullmatch(r"[a-z0-9-]{3,63}", value):
        raise ConfigError("AUTH_FIRST_PARTY_CLIENT_ID", "3-63 lower-case letters, digits and '-'")
    return value


def _audience(env: Env) -> tuple[str, ...]:
    audience = env.csv("AUTH_AUDIENCE", "todo-api")
    if not audience:
        raise ConfigError("AUTH_AUDIENCE", "needs at least one audience")
    return audience


def decode_key_encryption_key(variable: str, value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    try:
        key = base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ConfigError(variable, "not base64url") from None
    if len(key) != 32:
        raise ConfigError(variable, f"must decode to 32 bytes, got {len(key)}")
    return key


def _key_encryption_key(env: Env) -> bytes:
    value = env.raw("AUTH_KEY_ENCRYPTION_KEY")
    if value is not None:
        return decode_key_encryption_key("AUTH_KEY_ENCRYPTION_KEY", value)
    path = DEFAULT_KEK_FILE
    if path.exists():
        return decode_key_encryption_key(str(path), path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(encoded + "\n")
    print(
        f"WARNING: AUTH_KEY_ENCRYPTION_KEY is not set; generated one into {path} (mode 0600). "
        "Set it explicitly in production and back it up: without it the signing keys are lost.",
        file=sys.stderr,
    )
    return decode_key_encryption_key(str(path), encoded)
