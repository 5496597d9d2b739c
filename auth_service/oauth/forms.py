"""Form bodies and error answers in OAuth's own format (RFC 6749 §5.2), not problem+json."""

from __future__ import annotations

import urllib.parse
from typing import Any

from litestar import Request, Response

from auth_service.tokens.responses import NO_STORE

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


def _printable(value: str) -> bool:
    """No control characters and no lone surrogates: nothing a token, id or scope holds."""
    return value.isprintable() and not any(0xD800 <= ord(char) <= 0xDFFF for char in value)


async def read_form(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The form parameters; each at most once (RFC 6749 §3.2), printable, bounded."""
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
    for name, value in pairs:
        if len(value) > MAX_PARAMETER_LENGTH or not _printable(name) or not _printable(value):
            raise OAuthError("invalid_request", "a parameter holds characters it cannot hold")
    return dict(pairs)
