"""Security headers on every response that leaves the gateway, errors included."""

from __future__ import annotations

from litestar.types import ASGIApp, Message, Receive, Scope, Send

# The web client needs its own scripts, styles and API calls, and nothing else.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def security_headers(hsts: str) -> dict[str, str]:
    """The headers every answer carries, by lower-case name; the engine's configuration is
    rendered from the same list (gateway/edge_engine)."""
    return {
        "strict-transport-security": hsts,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "x-frame-options": "DENY",
        "content-security-policy": CONTENT_SECURITY_POLICY,
        "cross-origin-opener-policy": "same-origin",
        "permissions-policy": "camera=(), microphone=(), geolocation=()",
    }


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: str) -> None:
        self.app = app
        self.headers = security_headers(hsts)
        self.encoded = [(name.encode(), value.encode()) for name, value in self.headers.items()]
        self.names = frozenset(name for name, _ in self.encoded)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Ours replace any an upstream sent under the same names.
                kept = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in self.names
                ]
                message["headers"] = [*kept, *self.encoded]
            await send(message)

        await self.app(scope, receive, with_headers)
