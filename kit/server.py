"""Serving an app factory with the ASGI server chosen by measurement (see README)."""

from __future__ import annotations

import os

# How long a service keeps an idle client connection open (uvicorn's default, made explicit):
# the gateway must stop reusing an idle upstream connection before this (gateway/proxy).
KEEP_ALIVE_S = 5


def serve(factory: str, host: str, port: int) -> None:
    """Run `factory` ("module:function") on host:port; `ASGI_SERVER` picks the server."""
    server = os.environ.get("ASGI_SERVER", "uvicorn")
    if server == "granian":
        from granian import Granian
        from granian.constants import Interfaces

        Granian(factory, address=host, port=port, interface=Interfaces.ASGI, factory=True).serve()
        return
    import uvicorn

    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=10,
        timeout_keep_alive=KEEP_ALIVE_S,
        server_header=False,
        # Forwarding headers are judged by the app alone (TRUSTED_PROXIES and
        # GATEWAY_TRUSTED_PROXIES); uvicorn would otherwise believe any loopback peer's.
        proxy_headers=False,
    )
