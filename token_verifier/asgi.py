"""A pure ASGI middleware: any ASGI framework (Starlette, FastAPI, Quart, Django's ASGI, a bare
app) behind one token check.

    app = BearerAuthMiddleware(app, verifier=verifier, realm="reports",
                               exclude=["^/health"], scopes=["reports:read"])

A verified request carries its `VerifiedClaims` as `scope["user"]` and `scope["auth"]`, which is
where Starlette's `request.user` and `request.auth` read them (`request.auth.scopes` is the
token's scopes, so Starlette's own `@requires("…")` works on it too). A refused request is
answered here (refusals.py) and never reaches the app. WebSocket handshakes are checked the same
way and refused by closing with 1008 (policy violation) before they are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from token_verifier.errors import InsufficientScope, TokenRejected
from token_verifier.refusals import PROBLEM_JSON, Refusal, bearer_token, refusal_for
from token_verifier.verifier import TokenVerifier, require_scopes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
POLICY_VIOLATION = 1008


def authorization_of(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return bytes(value).decode("latin-1")
    return None


class BearerAuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: TokenVerifier,
        realm: str,
        exclude: Iterable[str] = (),
        scopes: Iterable[str] = (),
        resource_metadata: str | None = None,
    ) -> None:
        """`exclude`: regular expressions searched in the path (as Litestar's `exclude`);
        `scopes`: scopes every request needs (per-route scopes belong to the framework's
        adapter); `resource_metadata`: the RFC 9728 metadata URL named in a 401's challenge."""
        self.app = app
        self._verifier = verifier
        self._realm = realm
        patterns = list(exclude)
        self._exclude = re.compile("|".join(patterns)) if patterns else None
        self._scopes = tuple(scopes)
        self._resource_metadata = resource_metadata

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or (
            self._exclude is not None and self._exclude.search(scope.get("path", ""))
        ):
            await self.app(scope, receive, send)
            return
        try:
            claims = await self._verifier.verify(bearer_token(authorization_of(scope)))
            if self._scopes:
                require_scopes(claims, self._scopes)
        except (TokenRejected, InsufficientScope) as error:
            refusal = refusal_for(error, self._realm, self._resource_metadata)
            if kind == "websocket":
                await send({"type": "websocket.close", "code": POLICY_VIOLATION})
            else:
                await send_refusal(refusal, send)
            return
        scope["user"] = claims
        scope["auth"] = claims
        await self.app(scope, receive, send)


async def send_refusal(refusal: Refusal, send: Send) -> None:
    body = refusal.body_bytes()
    await send(
        {
            "type": "http.response.start",
            "status": refusal.status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", refusal.www_authenticate.encode("latin-1")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
