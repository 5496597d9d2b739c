"""Form bodies and error answers in OAuth's own format (RFC 6749 §5.2), not problem+json."""

from __future__ import annotations

import urllib.parse
from typing import Any

from litestar import Request, Response

from auth_service.tokens.responses import NO_STORE
from kit.text_input import ONE_LINE

MAX_PARAMETER_LENGTH = 16 * 1024


class OAuthError(Exception):
    """An answer of the form `{"error", "error_description"}`."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}

    def response(self) -> Response[dict[str, str]]:
        return Response(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers={**NO_STORE, **self.headers},
            media_type="application/json",
        )


async def read_form(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The form parameters; each at most once (RFC 6749 §3.2), bounded. Control characters
    and lone surrogates were refused before (kit.text_input, in RFC 6749's shape here)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "the body must be form-encoded")
    try:
        pairs = urllib.parse.parse_qsl(
            (await request.body()).decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",  # a percent-escape that is not UTF-8 is refused, not replaced
        )
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not a valid form") from None
    names = [name for name, _ in pairs]
    if len(names) != len(set(names)):
        raise OAuthError("invalid_request", "a parameter was sent more than once")
    if any(len(value) > MAX_PARAMETER_LENGTH for _, value in pairs):
        raise OAuthError("invalid_request", "a parameter is too long")
    return dict(pairs)


# What the forms hold, for the OpenAPI document (read_form does the reading): every value a
# printable line; a client either names itself (a public client), or sends an assertion and
# its type together (private_key_jwt), or HTTP basic credentials (the security scheme).
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_LINE = {"type": "string", "minLength": 1, "maxLength": 4096, "pattern": ONE_LINE}
_CLIENT = {
    "client_id": _LINE,
    "client_assertion_type": {"type": "string", "enum": [ASSERTION_TYPE]},
    "client_assertion": _LINE,
}
_PAIRED = {
    "client_assertion_type": ["client_assertion"],
    "client_assertion": ["client_assertion_type"],
}
TOKEN_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "grant_type": {"type": "string", "enum": ["refresh_token", "client_credentials"]},
        "refresh_token": _LINE,
        "scope": _LINE,
        "resource": _LINE,
        **_CLIENT,
    },
    "required": ["grant_type"],
    "dependentRequired": _PAIRED,
    "if": {"properties": {"grant_type": {"const": "refresh_token"}}},
    "then": {"required": ["refresh_token"]},
    "additionalProperties": False,
}
TOKEN_LOOKUP_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "token": _LINE,
        "token_type_hint": {"type": "string", "enum": ["access_token", "refresh_token"]},
        **_CLIENT,
    },
    "required": ["token"],
    "dependentRequired": _PAIRED,
    "additionalProperties": False,
}
