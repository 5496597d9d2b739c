"""BENCH ONLY: an upstream that does nothing but answer, for the gateway's own share of the
added latency. Every path gets 200 with a body the size of the bench's task list (20 tasks);
`?idle_us=N` first sleeps N µs, an upstream that is slow without using any CPU.

    python -m tests.bench.stub_upstream PORT
"""

from __future__ import annotations

import asyncio
import sys
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from kit.server import serve

Message = dict[str, Any]

BODY = b'{"items": "' + b"x" * 4440 + b'", "total": 20}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def stub(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
    idle_us = int(query.get("idle_us", ["0"])[0])
    if idle_us:
        await asyncio.sleep(idle_us / 1e6)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY, "more_body": False})


def create_app() -> Callable[..., Awaitable[None]]:
    return stub


if __name__ == "__main__":
    serve("tests.bench.stub_upstream:create_app", "127.0.0.1", int(sys.argv[1]))
