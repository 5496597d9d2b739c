"""Each edge as a real process (the Python gateway under uvicorn, nginx on the rendered
configuration), with the echo upstream behind it: what only a real connection shows."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kit.server import KEEP_ALIVE_S
from tests.gateway.echo import echo_server
from tests.gateway.edges import EDGES, NGINX, start_edge
from tests.infra import ServiceProcess, free_port


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    with echo_server() as url:
        yield url


@pytest.fixture(params=EDGES)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def gateway_process(kind: str, workdir: Path, echo: str, **env: str) -> ServiceProcess:
    return start_edge(kind, workdir, {"GATEWAY_AUTH_URL": echo, "GATEWAY_TODO_URL": echo, **env})


def forwarded_seen(gateway: ServiceProcess, proto: str = "https") -> dict[str, str]:
    response = httpx.get(
        f"{gateway.url}/api/x",
        headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": proto},
        timeout=5,
    )
    assert response.status_code == 200
    return {k: v for k, v in response.json()["headers"] if k.startswith("x-forwarded-")}


def test_only_the_configured_proxies_are_believed(kind: str, workdir: Path, echo: str) -> None:
    # The ASGI server under the gateway must not apply forwarding headers of its own (uvicorn
    # believes loopback peers by default): GATEWAY_TRUSTED_PROXIES is the only authority.
    gateway = gateway_process(kind, workdir / "nobody", echo)
    try:
        seen = forwarded_seen(gateway)
    finally:
        gateway.stop()
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"

    trusting = gateway_process(
        kind, workdir / "loopback", echo, GATEWAY_TRUSTED_PROXIES="127.0.0.1"
    )
    try:
        seen = forwarded_seen(trusting)
        # A trusted proxy's scheme is passed on only when it is one; the last entry counts.
        garbage = forwarded_seen(trusting, proto="javascript")
        chained = forwarded_seen(trusting, proto="https, HTTP")
        # The last X-Forwarded-For entry is the one the trusted proxy vouches for; one that
        # is not an address leaves the peer's.
        last = httpx.get(
            f"{trusting.url}/api/x", headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.7"}
        ).json()["headers"]
        garbled = httpx.get(
            f"{trusting.url}/api/x", headers={"X-Forwarded-For": "not-an-address"}
        ).json()["headers"]
    finally:
        trusting.stop()
    assert seen["x-forwarded-for"] == "203.0.113.9"
    assert seen["x-forwarded-proto"] == "https"
    assert garbage["x-forwarded-proto"] == "http"
    assert chained["x-forwarded-proto"] == "http"
    assert [v for k, v in last if k == "x-forwarded-for"] == ["198.51.100.7"]
    assert [v for k, v in garbled if k == "x-forwarded-for"] == ["127.0.0.1"]


def test_header_bytes_reach_the_upstream_unchanged_or_are_refused(
    kind: str, workdir: Path, echo: str
) -> None:
    # On a real connection, so the bytes are the client's. The echo shows each byte it got as
    # one latin-1 character.
    value = "café ☕".encode()
    gateway = gateway_process(kind, workdir, echo)
    try:
        passed = httpx.get(f"{gateway.url}/api/x", headers={b"X-Name": value}, timeout=5)
        refused = httpx.get(f"{gateway.url}/api/x", headers={b"X-Name": b"\xff\xfe"}, timeout=5)
    finally:
        gateway.stop()
    assert passed.status_code == 200
    assert [v for k, v in passed.json()["headers"] if k == "x-name"] == [value.decode("latin-1")]
    if kind == NGINX:
        # nginx passes a header's bytes on as they came, UTF-8 or not (README, Edge).
        assert refused.status_code == 200
        assert [v for k, v in refused.json()["headers"] if k == "x-name"] == ["\xff\xfe"]
        return
    # aiohttp can only write UTF-8 header values: anything else is a clear 400, not mangled.
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "malformed_request"


class StaleKeepAliveUpstream:
    """An upstream that answers on keep-alive connections until one has been idle for
    `idle_limit` seconds; a request on such a connection is met by closing it unanswered.
    That is what a real service does when its keep-alive timer fires as the request crosses
    the close on the wire, a race too narrow to hit on loopback, so it is made certain here."""

    def __init__(self, idle_limit: float) -> None:
        self.idle_limit = idle_limit
        self.connections = 0
        self.dropped = 0
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        last_answer: float | None = None
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                if last_answer is not None and time.monotonic() - last_answer >= self.idle_limit:
                    self.dropped += 1
                    return
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: 2\r\nconnection: keep-alive\r\n\r\n{}"
                )
                await writer.drain()
                last_answer = time.monotonic()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port)
        )
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

    def __enter__(self) -> str:
        self._thread.start()
        assert self._started.wait(timeout=10), "the stub upstream did not start"
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def test_an_idle_upstream_connection_is_not_reused_once_the_service_may_close_it(
    kind: str, workdir: Path
) -> None:
    upstream = StaleKeepAliveUpstream(idle_limit=KEEP_ALIVE_S)
    with upstream as url:
        gateway = gateway_process(kind, workdir, url)
        try:
            first = httpx.get(f"{gateway.url}/api/x", timeout=5)
            # The idle time is what is tested: the connection must outlive the service's
            # keep-alive before the next request is sent through the gateway.
            time.sleep(KEEP_ALIVE_S + 0.3)
            second = httpx.post(f"{gateway.url}/auth/login", json={"a": 1}, timeout=5)
        finally:
            gateway.stop()
    assert first.status_code == 200
    assert second.status_code == 200, second.text
    assert upstream.dropped == 0
    # The second request went over a connection of its own (readiness checks could add more).
    assert upstream.connections >= 2
