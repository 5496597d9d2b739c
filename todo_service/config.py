"""Todo service settings from the environment (see the configuration table in README.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from kit.settings import ConfigError, Env


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///.data/todo.db"
    jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    issuer: str = "http://127.0.0.1:8000"
    audience: tuple[str, ...] = ("todo-api",)
    # An unknown kid triggers at most one JWKS fetch per this many seconds.
    jwks_cooldown: int = 30
    jwks_min_refresh: int = 30
    jwks_max_refresh: int = 3600
    # The auth service's revocation list; unset: next to the JWKS (…/internal/revocations).
    revocation_url: str = "http://127.0.0.1:8001/internal/revocations"
    revocation_interval: float = 1.0
    # Account events (a deleted account's tasks go), read with this service's own client.
    events_url: str = "http://127.0.0.1:8001/internal/events"
    token_url: str = "http://127.0.0.1:8001/oauth/token"  # noqa: S105 - a URL
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    revocation_max_staleness: int | None = None
    # Where clients reach this service (the gateway): the RFC 9728 metadata URL is built on it.
    public_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8002

    @property
    def resource_metadata_url(self) -> str:
        return f"{self.public_url}/.well-known/oauth-protected-resource"

    @classmethod
    def from_env(cls, env: Env | None = None) -> Settings:
        env = env or Env()
        audience = env.csv("TODO_AUDIENCE", "todo-api")
        if not audience:
            raise ConfigError("TODO_AUDIENCE", "needs at least one audience")
        min_refresh = env.positive_int("TODO_JWKS_MIN_REFRESH", 30)
        max_refresh = env.positive_int("TODO_JWKS_MAX_REFRESH", 3600)
        if max_refresh < min_refresh:
            raise ConfigError("TODO_JWKS_MAX_REFRESH", "must not be below TODO_JWKS_MIN_REFRESH")
        issuer = env.url("TODO_ISSUER", cls.issuer, ("http", "https")).rstrip("/")
        jwks_url = env.url("TODO_JWKS_URL", cls.jwks_url, ("http", "https"))
        staleness = env.raw("TODO_REVOCATION_MAX_STALENESS")
        return cls(
            database_url=env.url(
                "TODO_DATABASE_URL", cls.database_url, ("sqlite+aiosqlite", "postgresql+asyncpg")
            ),
            jwks_url=jwks_url,
            revocation_url=env.url(
                "TODO_REVOCATION_URL", _beside(jwks_url, "/internal/revocations"), ("http", "https")
            ),
            events_url=env.url(
                "TODO_EVENTS_URL", _beside(jwks_url, "/internal/events"), ("http", "https")
            ),
            token_url=env.url(
                "TODO_TOKEN_URL", _beside(jwks_url, "/oauth/token"), ("http", "https")
            ),
            client_id=env.optional_str("TODO_CLIENT_ID") if _client_secret(env) else None,
            client_secret=_client_secret(env),
            revocation_max_staleness=(
                None if staleness is None else env.positive_int("TODO_REVOCATION_MAX_STALENESS", 0)
            ),
            issuer=issuer,
            public_url=env.url("TODO_PUBLIC_URL", issuer, ("http", "https")).rstrip("/"),
            audience=audience,
            jwks_cooldown=env.positive_int("TODO_JWKS_COOLDOWN", 30),
            jwks_min_refresh=min_refresh,
            jwks_max_refresh=max_refresh,
            host=env.str("TODO_HOST", "127.0.0.1"),
            port=env.port("TODO_PORT", 8002),
        )


def _beside(url: str, path: str) -> str:
    """The same scheme and host as `url`, at `path`."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _client_secret(env: Env) -> str | None:
    secret = env.optional_str("TODO_CLIENT_SECRET")
    if (secret is None) != (env.optional_str("TODO_CLIENT_ID") is None):
        raise ConfigError(
            "TODO_CLIENT_SECRET", "set TODO_CLIENT_ID and TODO_CLIENT_SECRET together"
        )
    return secret
