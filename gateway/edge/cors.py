"""What a listed browser origin may do (GATEWAY_CORS_ORIGINS lists the origins): one list for
the Python gateway's CORS middleware and the engine's rendered configuration."""

from __future__ import annotations

from typing import Final, Literal

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]

CORS_METHODS: Final[tuple[Method, ...]] = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Auth-Mode", "X-Request-ID")
CORS_EXPOSED_HEADERS = ("Retry-After", "X-Request-ID", "WWW-Authenticate")
CORS_MAX_AGE_S = 600
