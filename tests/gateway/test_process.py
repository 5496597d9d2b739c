"""The gateway as a real process (uvicorn in front of it), with the echo upstream behind it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.echo import echo_server
from tests.infra import ServiceProcess, start_service


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    with echo_server() as url:
        yield url


def gateway_process(workdir: Path, echo: str, **env: str) -> ServiceProcess:
    return start_service(
        "gateway",
        workdir,
        {"GATEWAY_AUTH_URL": echo, "GATEWAY_TODO_URL": echo, **env},
    )


def forwarded_seen(gateway: ServiceProcess) -> dict[str, str]:
    response = httpx.get(
        f"{gateway.url}/api/x",
        headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"},
        timeout=5,
    )
    assert response.status_code == 200
    return {k: v for k, v in response.json()["headers"] if k.startswith("x-forwarded-")}


def test_only_the_configured_proxies_are_believed(workdir: Path, echo: str) -> None:
    # The ASGI server under the gateway must not apply forwarding headers of its own (uvicorn
    # believes loopback peers by default): GATEWAY_TRUSTED_PROXIES is the only authority.
    gateway = gateway_process(workdir / "nobody", echo)
    try:
        seen = forwarded_seen(gateway)
    finally:
        gateway.stop()
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"

    trusting = gateway_process(workdir / "loopback", echo, GATEWAY_TRUSTED_PROXIES="127.0.0.1")
    try:
        seen = forwarded_seen(trusting)
    finally:
        trusting.stop()
    assert seen["x-forwarded-for"] == "203.0.113.9"


def test_header_bytes_reach_the_upstream_unchanged_or_are_refused(workdir: Path, echo: str) -> None:
    # On a real connection, so the bytes are the client's (the in-process test client
    # re-encodes header values). The echo shows each byte it got as one latin-1 character.
    value = "café ☕".encode()
    gateway = gateway_process(workdir, echo)
    try:
        passed = httpx.get(f"{gateway.url}/api/x", headers={b"X-Name": value}, timeout=5)
        refused = httpx.get(f"{gateway.url}/api/x", headers={b"X-Name": b"\xff\xfe"}, timeout=5)
    finally:
        gateway.stop()
    assert passed.status_code == 200
    assert [v for k, v in passed.json()["headers"] if k == "x-name"] == [value.decode("latin-1")]
    # aiohttp can only write UTF-8 header values: anything else is a clear 400, not mangled.
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "malformed_request"
