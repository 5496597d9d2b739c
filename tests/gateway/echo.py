"""An upstream for testing the gateway's forwarding: it answers with what it received.

`/slow?seconds=n` waits before answering, `/cookies` sets two cookies, `/big` returns 1 MiB,
`/gzip` answers a gzip-encoded body.
It is a test double of *any* upstream (the gateway is the unit under test), run by uvicorn
on a loopback port in a thread.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from tests.infra import free_port, wait_until

GZIPPED = gzip.compress(b'{"compressed": true}', mtime=0)


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    query = urllib.parse.parse_qs(scope["query_string"].decode())
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
    if path.endswith("/slow"):
        await asyncio.sleep(float(query.get("seconds", ["1"])[0]))
    if path.endswith("/cookies"):
        headers += [(b"set-cookie", b"a=1; Path=/"), (b"set-cookie", b"b=2; Path=/")]
    if path.endswith("/chunked"):  # no Content-Length: three chunks as they come
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for part in (b"first,", b"second,", b"third"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if path.endswith("/big"):
        payload = b"x" * (1024 * 1024)
    elif path.endswith("/gzip"):
        payload = GZIPPED
        headers.append((b"content-encoding", b"gzip"))
    else:
        payload = json.dumps(
            {
                "method": scope["method"],
                "path": path,
                "raw_path": scope.get("raw_path", b"").decode("latin-1"),
                "query": scope["query_string"].decode("latin-1"),
                "headers": [
                    [k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]
                ],
                "body": body.decode("latin-1"),
                "port": scope["server"][1],
            }
        ).encode()
    headers.append((b"connection", b"keep-alive"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


@contextmanager
def echo_server(app: Any = echo_app) -> Iterator[str]:
    """Serve `app` (the echo upstream by default) on a loopback port in a thread."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10, what="the echo upstream to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
