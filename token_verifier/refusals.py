"""The one way a refused request is answered, whatever the framework: the contract's problem
body (RFC 9457, `application/problem+json`, with `code`) and the RFC 6750 challenge.

- a token missing, invalid, expired or revoked: 401,
  `WWW-Authenticate: Bearer realm="…", error="invalid_token", error_description="…"`
  (only `Bearer realm="…"` when no token was sent), plus `resource_metadata="…"` (RFC 9728)
  when the resource publishes its metadata;
- a valid token without a scope the route needs: 403 `insufficient_scope`,
  `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from token_verifier.errors import InsufficientScope, TokenRejected

PROBLEM_JSON = "application/problem+json"
_TITLES = {401: "Unauthorized", 403: "Forbidden"}


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    code: str
    detail: str
    www_authenticate: str

    @property
    def title(self) -> str:
        return _TITLES[self.status]

    def body(self) -> dict[str, Any]:
        return {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }

    def body_bytes(self) -> bytes:
        return json.dumps(self.body(), separators=(",", ":")).encode()

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.www_authenticate}


def refusal_for(
    error: TokenRejected | InsufficientScope, realm: str, resource_metadata: str | None = None
) -> Refusal:
    if isinstance(error, InsufficientScope):
        return Refusal(403, error.code, error.detail, error.www_authenticate())
    return Refusal(
        401,
        error.code,
        error.detail,
        error.www_authenticate(realm, resource_metadata=resource_metadata),
    )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header (scheme case-insensitive), else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
