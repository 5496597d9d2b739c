"""A JSON body means what the route's OpenAPI document says it means: decoded strictly.

Litestar converts a decoded body to the route's `data` type in msgspec's lax mode (it must, for
path and query parameters, which arrive as text), so `{"completed": 0}` or `{"completed":
"true"}` was taken as a boolean although the document says `boolean`. Here the body is first
decoded strictly, as msgspec decodes JSON, against that same type; a body that does not fit is
a 422 naming the member. Malformed JSON is left to the route (400 `malformed_request`), and so
is a body that is not JSON (a form-encoded OAuth request).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.handlers import HTTPRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from kit.problems import FieldError
from kit.text_input import is_json, media_type

_WHERE = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MEMBER = re.compile(r"(?:missing required|unknown) field `(?P<name>[^`]+)`")
_NO_BODY_TYPE = object()
_types: dict[int, Any] = {}  # route handler id → its body's type; handlers live as long as apps


def _body_type(handler: HTTPRouteHandler) -> Any:
    known = _types.get(id(handler))
    if known is None:
        data = handler.parsed_fn_signature.parameters.get("data")
        annotation = data.annotation if data is not None else None
        is_struct = isinstance(annotation, type) and issubclass(annotation, msgspec.Struct)
        known = _types[id(handler)] = annotation if is_struct else _NO_BODY_TYPE
    return known


def field_of(error: msgspec.ValidationError) -> tuple[str, str]:
    """`Expected bool, got int - at $.completed` → ("completed", "Expected bool, got int");
    a missing or unknown member is named itself."""
    message = str(error)
    where = _WHERE.search(message)
    path = re.sub(r"\[(\d+)\]", r".\1", where.group("path")).lstrip(".") if where else ""
    text = message[: where.start()] if where else message
    member = _MEMBER.search(text)
    if member is not None:
        path = f"{path}.{member.group('name')}" if path else member.group("name")
    return path or "body", text


class StrictJsonBodyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        if isinstance(handler, HTTPRouteHandler):
            body_type = _body_type(handler)
            if body_type is not _NO_BODY_TYPE and is_json(media_type(scope.get("headers", []))):
                body = await Request(scope, receive).body()  # kept: the route reads it again
                try:
                    msgspec.json.decode(body, type=body_type)
                except msgspec.ValidationError as error:
                    raise FieldError(*field_of(error)) from None
                except msgspec.DecodeError:
                    pass  # the route answers 400 malformed_request
        await self.app(scope, receive, send)
