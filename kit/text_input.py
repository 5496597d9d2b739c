"""The text a service accepts, checked in one place for every input of every route: path and
query parameters, header values, and every string (keys included) of a JSON or form body.

Refused everywhere, with a 422 `validation_error` naming the field: NUL and the other C0 control
characters except TAB, LF and CR; DEL; the C1 controls (U+0080–U+009F); lone surrogates.
PostgreSQL cannot store NUL in text (the driver fails with `invalid byte sequence`, which was a
500), a lone surrogate cannot be encoded as UTF-8 at all, and the other controls are never
meant as text: they only corrupt logs, terminals and the lists people read. One check in front
of every handler instead of one per field, so that a field added tomorrow is covered too.

In path and query parameters nothing spans lines, so TAB, LF and CR are refused there too. In a
body TAB, LF and CR pass this guard; whether a field takes them is its type's business: `Text` (one
line, no control character at all) or `MultilineText` (TAB, LF and CR allowed, as in a task's
description). Both are JSON Schema patterns, so the OpenAPI document says what is accepted and
msgspec enforces exactly that when it decodes the body.

Header values are raw bytes decoded as Latin-1 (bytes 0x80–0xFF are RFC 9110's obs-text, and
UTF-8 user agents send them), so there only the C0 controls other than TAB, and DEL, are refused.
A JSON body the JSON decoder refuses (a lone surrogate escape such as `\\ud800` is one) is left
to the route, which answers 400 `malformed_request`.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Iterator
from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.params import PathParameter
from litestar.types import ASGIApp, Receive, Scope, Send

from kit.problems import FieldError

# JSON Schema patterns (ECMA-262 and Python read them alike). `(?![\s\S])` is "end of input":
# Python's `$` also matches before a final newline, which would let "title\n" through.
ONE_LINE = r"^[^\x00-\x1f\x7f-\x9f]*(?![\s\S])"
MULTILINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*(?![\s\S])"

Text = Annotated[str, msgspec.Meta(pattern=ONE_LINE)]
MultilineText = Annotated[str, msgspec.Meta(pattern=MULTILINE)]
# A path parameter: `session_id: PathText`. Documents (and checks again) the guard's rule.
PathText = Annotated[str, PathParameter(pattern=ONE_LINE)]

MESSAGE = "must not contain control characters or lone surrogates"
_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_REFUSED_IN_URL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # no parameter spans lines


def _marking(refused_bytes: Iterable[int]) -> bytes:
    """A bytes.translate table turning the refused bytes into NUL and every other into 0x01:
    looking for NUL in the translation scans at memory speed, where a regular expression's
    character class costs several nanoseconds a byte (5 µs for the headers of one request)."""
    refused_set = set(refused_bytes)
    return bytes(0 if byte in refused_set else 1 for byte in range(256))


def _holds(data: bytes, table: bytes) -> bool:
    return b"\0" in data.translate(table)


_HEADER_SUSPECT = _marking([*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F])  # TAB, obs-text pass
_QUERY_SUSPECT = _marking([*range(0x00, 0x20), 0x25, *range(0x7F, 0x100)])  # 0x25 is `%`
# A JSON body without these bytes cannot hold a refused character: a control character must be
# escaped in JSON (`\`; raw, it is malformed JSON the decoder refuses), DEL is 0x7F, the C1
# controls are 0xC2 0x80–0x9F in UTF-8, and a raw surrogate (0xED 0xA0–0xBF) is invalid UTF-8
# that the decoder refuses. Most bodies skip the decoding and the walk.
_JSON_SUSPECT = _marking([0x5C, 0x7F, 0xC2])
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM = "application/x-www-form-urlencoded"


def refused(value: str) -> bool:
    return _REFUSED.search(value) is not None


def _in_json(value: Any, path: str) -> Iterator[str]:
    """The paths of the refused strings in a decoded JSON value (`field`, `field.0.name`)."""
    if isinstance(value, str):
        if refused(value):
            yield path or "body"
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if refused(key):
                yield path or "body"
            else:
                yield from _in_json(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _in_json(item, f"{path}.{index}" if path else str(index))


def media_type(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The media type of raw ASGI headers' Content-Type, lower-cased, without parameters."""
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.split(b";")[0].strip().lower().decode("latin-1")
    return ""


def _header_field(headers: list[tuple[bytes, bytes]]) -> str | None:
    if not _holds(b"\t".join(value for _, value in headers), _HEADER_SUSPECT):
        return None  # one scan of every value: the common case
    for name, value in headers:
        if _holds(value, _HEADER_SUSPECT):
            return name.decode("latin-1").lower()
    return None


def _query_field(query: bytes) -> str | None:
    if not query or not _holds(query, _QUERY_SUSPECT):
        return None  # nothing percent-encoded, nothing that is not plain ASCII
    pairs = urllib.parse.parse_qsl(query.decode("utf-8", "replace"), keep_blank_values=True)
    for name, value in pairs:
        if _REFUSED_IN_URL.search(name):
            return "query"
        if _REFUSED_IN_URL.search(value):
            return name
    return None


def is_json(media: str) -> bool:
    """Whether a body of this media type is read as JSON: Litestar decodes a route's `data` as
    JSON whatever the Content-Type (none, text/plain…), unless it is a form."""
    return media != FORM and not media.startswith("multipart/")


async def _body_field(scope: Scope, receive: Receive, media: str) -> str | None:
    json_body = is_json(media)
    if not json_body and media != FORM:
        return None
    body = await Request(scope, receive).body()  # kept in the scope: the route reads it again
    if not body:
        return None
    if json_body:
        if not _holds(body, _JSON_SUSPECT):
            return None
        try:
            decoded = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return None  # the route's own decoding answers 400 malformed_request
        return next(_in_json(decoded, ""), None)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return None  # the route answers its own "not a valid form"
    # A form's values are one-line (OAuth's tokens, ids and scopes): line breaks refused too.
    for name, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        if _REFUSED_IN_URL.search(name):
            return "body"
        if _REFUSED_IN_URL.search(value):
            return name
    return None


async def refused_field(scope: Scope, receive: Receive) -> str | None:
    """The first input of an HTTP request holding a refused character, named as the 422 names
    it. Read from the ASGI scope: most requests hold nothing to refuse, and answering that costs
    a few scans of bytes instead of building the framework's request."""
    for name, value in (scope.get("path_params") or {}).items():
        if isinstance(value, str) and _REFUSED_IN_URL.search(value):
            return str(name)
    query = _query_field(scope.get("query_string", b""))
    if query is not None:
        return query
    headers = list(scope.get("headers", []))
    header = _header_field(headers)
    if header is not None:
        return header
    if scope.get("method") in _BODY_METHODS:
        return await _body_field(scope, receive, media_type(headers))
    return None


class TextInputMiddleware:
    """Refuses a request whose text input holds a refused character before any handler (or
    dependency) reads it. Raised as a FieldError, so a route with its own error format (the
    OAuth routes) answers in that format through its exception handlers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":  # type: ignore[comparison-overlap]
            field = await refused_field(scope, receive)
            if field is not None:
                raise FieldError(field, MESSAGE)
        await self.app(scope, receive, send)
