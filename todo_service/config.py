"""Todo service settings from the environment (see the configuration table in README.md)."""

from __future__ import annotations

from dataclasses import dataclass

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
        return cls(
            database_url=env.url(
                "TODO_DATABASE_URL", cls.database_url, ("sqlite+aiosqlite", "postgresql+asyncpg")
            ),
            jwks_url=env.url("TODO_JWKS_URL", cls.jwks_url, ("http", "https")),
            issuer=issuer,
            public_url=env.url("TODO_PUBLIC_URL", issuer, ("http", "https")).rstrip("/"),
            audience=audience,
            jwks_cooldown=env.positive_int("TODO_JWKS_COOLDOWN", 30),
            jwks_min_refresh=min_refresh,
            jwks_max_refresh=max_refresh,
            host=env.str("TODO_HOST", "127.0.0.1"),
            port=env.port("TODO_PORT", 8002),
        )
