"""Gateway settings from the environment (see the configuration table in README.md)."""

from __future__ import annotations

from dataclasses import dataclass

from kit.clients import Network, parse_networks
from kit.settings import ConfigError, Env


@dataclass(frozen=True)
class Settings:
    auth_urls: tuple[str, ...] = ("http://127.0.0.1:8001",)
    todo_urls: tuple[str, ...] = ("http://127.0.0.1:8002",)
    redis_url: str | None = None
    redis_prefix: str = "gateway:"
    cors_origins: tuple[str, ...] = ()
    auth_rate_limit: str = "30/minute"
    # Proxies in front of the gateway whose X-Forwarded-For it believes; none by default,
    # because the gateway is the edge.
    trusted_proxies: tuple[Network, ...] = ()
    connect_timeout: float = 2.0
    read_timeout: float = 15.0
    hsts: str = "max-age=63072000; includeSubDomains"
    host: str = "127.0.0.1"
    port: int = 8000

    @classmethod
    def from_env(cls, env: Env | None = None) -> Settings:
        env = env or Env()
        try:
            trusted = parse_networks(env.str("GATEWAY_TRUSTED_PROXIES", ""))
        except ValueError as error:
            raise ConfigError("GATEWAY_TRUSTED_PROXIES", str(error)) from None
        origins = env.csv("GATEWAY_CORS_ORIGINS", "")
        for origin in origins:
            if origin == "*" or not origin.startswith(("http://", "https://")):
                raise ConfigError("GATEWAY_CORS_ORIGINS", f"not an origin: {origin!r}")
        return cls(
            auth_urls=env.url_list("GATEWAY_AUTH_URL", "http://127.0.0.1:8001", ("http", "https")),
            todo_urls=env.url_list("GATEWAY_TODO_URL", "http://127.0.0.1:8002", ("http", "https")),
            redis_url=env.optional_url("GATEWAY_REDIS_URL", ("redis", "rediss", "unix")),
            redis_prefix=env.str("GATEWAY_REDIS_PREFIX", "gateway:"),
            cors_origins=origins,
            auth_rate_limit=env.rate_limit("GATEWAY_AUTH_RATE_LIMIT", "30/minute"),
            trusted_proxies=trusted,
            connect_timeout=env.positive_int("GATEWAY_CONNECT_TIMEOUT_MS", 2000) / 1000,
            read_timeout=env.positive_int("GATEWAY_READ_TIMEOUT_MS", 15000) / 1000,
            host=env.str("GATEWAY_HOST", "127.0.0.1"),
            port=env.port("GATEWAY_PORT", 8000),
        )
