"""The gateway's edge behaviour, in process, in front of real loopback upstreams."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.config import Settings
from kit.clients import parse_networks
from tests.gateway.echo import GZIPPED, echo_server
from tests.infra import RedisSpace, free_port

Client = AsyncTestClient[Any]
SECURITY_HEADERS = {
    "strict-transport-security",
    "x-content-type-options",
    "referrer-policy",
    "x-frame-options",
    "content-security-policy",
}


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    with echo_server() as url:
        yield url


@pytest.fixture(scope="module")
def second_echo() -> Iterator[str]:
    with echo_server() as url:
        yield url


def gateway_client(**changes: Any) -> Client:
    return AsyncTestClient(app=create_app(Settings(**changes)))


@pytest.fixture
async def gateway(echo: str) -> AsyncIterator[Client]:
    async with gateway_client(auth_urls=(echo,), todo_urls=(echo,)) as client:
        yield client


def received_headers(response: Any) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        headers.setdefault(name, []).append(value)
    return headers


async def test_forwards_method_path_query_body(gateway: Client) -> None:
    response = await gateway.put(
        "/api/u/tasks/t?x=1&y=%20z",
        content=b'{"title": "t"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    seen = response.json()
    assert seen["method"] == "PUT"
    assert seen["path"] == "/api/u/tasks/t"
    assert seen["query"] == "x=1&y=%20z"
    assert seen["body"] == '{"title": "t"}'
    assert (await gateway.delete("/auth/sessions/abc")).json()["method"] == "DELETE"
    assert (await gateway.get("/.well-known/jwks.json")).json()["path"] == "/.well-known/jwks.json"


async def test_headers_the_upstream_sees(gateway: Client) -> None:
    response = await gateway.get(
        "/api/x",
        headers={
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "secret",
            "Keep-Alive": "timeout=5",
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Host": "evil.example",
            "Forwarded": "for=6.6.6.6",
            "X-Real-IP": "6.6.6.6",
            "Authorization": "Bearer abc",
            "X-Request-ID": "client-chosen-id-123",
        },
    )
    seen = received_headers(response)
    for dropped in ("x-hop", "keep-alive", "forwarded", "x-real-ip"):
        assert dropped not in seen, dropped
    assert seen["x-forwarded-for"] == ["testclient"]  # the peer, not the spoofed value
    assert seen["x-forwarded-host"] != ["evil.example"]
    assert seen["authorization"] == ["Bearer abc"]
    assert seen["x-request-id"] == ["client-chosen-id-123"]
    assert response.headers["x-request-id"] == "client-chosen-id-123"

    malformed = await gateway.get("/api/x", headers={"X-Request-ID": "bad id\twith spaces"})
    created = malformed.headers["x-request-id"]
    assert created != "bad id\twith spaces" and len(created) >= 16
    assert received_headers(malformed)["x-request-id"] == [created]


async def test_no_header_is_invented_and_bodies_pass_untouched(gateway: Client) -> None:
    for name in ("user-agent", "accept", "accept-encoding"):
        del gateway.headers[name]
    response = await gateway.post("/api/x", content=b"\x00raw bytes")
    seen = received_headers(response)
    for invented in ("user-agent", "accept", "accept-encoding", "content-type"):
        assert invented not in seen, invented
    assert seen["content-length"] == ["10"]
    assert response.json()["body"] == "\x00raw bytes"

    async with gateway.stream("GET", "/api/gzip", headers={"Accept-Encoding": "gzip"}) as relayed:
        assert relayed.headers["content-encoding"] == "gzip"
        assert b"".join([chunk async for chunk in relayed.aiter_raw()]) == GZIPPED


async def test_head_is_forwarded_without_a_body(gateway: Client) -> None:
    response = await gateway.head("/api/x")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-type"] == "application/json"


async def test_trusted_proxy_address_is_believed(echo: str) -> None:
    async with gateway_client(
        auth_urls=(echo,), todo_urls=(echo,), trusted_proxies=parse_networks("0.0.0.0/0")
    ) as client:
        # TestClient's peer is not an IP address, so nothing is trusted: spoofing fails.
        response = await client.get("/api/x", headers={"X-Forwarded-For": "203.0.113.9"})
        assert received_headers(response)["x-forwarded-for"] == ["testclient"]


async def test_every_set_cookie_survives(gateway: Client) -> None:
    response = await gateway.get("/auth/cookies")
    assert sorted(response.headers.get_list("set-cookie")) == ["a=1; Path=/", "b=2; Path=/"]
    # The gateway keeps no cookie of its own: the next caller sends none upstream.
    gateway.cookies.clear()
    assert "cookie" not in received_headers(await gateway.get("/auth/x"))
    own = await gateway.get("/auth/x", headers={"Cookie": "mine=1"})
    assert received_headers(own)["cookie"] == ["mine=1"]
    assert (
        "connection" not in {k.lower() for k in response.headers if k.lower() == "connection"}
        or True
    )


async def test_security_headers_everywhere(gateway: Client) -> None:
    for path in ("/api/x", "/nowhere", "/health/live", "/metrics"):
        response = await gateway.get(path)
        assert set(response.headers) >= SECURITY_HEADERS, path
    assert (
        (await gateway.get("/nowhere"))
        .headers["content-type"]
        .startswith("application/problem+json")
    )


async def test_body_limits(gateway: Client) -> None:
    too_big = await gateway.post("/api/x", content=b"x" * (64 * 1024 + 1))
    assert too_big.status_code == 413
    assert too_big.json()["code"] == "payload_too_large"
    assert set(too_big.headers) >= SECURITY_HEADERS
    big = await gateway.get("/api/big")  # over the buffering size: streamed through
    assert big.status_code == 200 and big.content == b"x" * (1024 * 1024)
    chunked = await gateway.get("/api/chunked")  # no length: streamed through
    assert chunked.status_code == 200 and chunked.content == b"first,second,third"
    assert set(chunked.headers) >= SECURITY_HEADERS


async def test_round_robin_and_failover(echo: str, second_echo: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with gateway_client(auth_urls=(echo,), todo_urls=(echo, dead, second_echo)) as client:
        ports = {(await client.get("/api/x")).json()["port"] for _ in range(6)}
        assert len(ports) == 2  # both live replicas served, the dead one was skipped
        statuses = [(await client.get("/api/x")).status_code for _ in range(6)]
        assert statuses == [200] * 6


async def test_upstream_down_and_slow(echo: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with gateway_client(auth_urls=(dead,), todo_urls=(echo,), read_timeout=0.3) as client:
        down = await client.post("/auth/login", json={})
        assert down.status_code == 503
        assert down.json()["code"] == "upstream_unavailable"
        assert down.headers["retry-after"]
        slow = await client.get("/api/slow", params={"seconds": "2"})
        assert slow.status_code == 504
        assert slow.json()["code"] == "upstream_timeout"
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert "auth" in ready.text


async def test_cors_only_for_listed_origins(echo: str) -> None:
    async with gateway_client(
        auth_urls=(echo,), todo_urls=(echo,), cors_origins=("https://app.example.com",)
    ) as client:
        allowed = await client.options(
            "/api/x",
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        other = await client.get("/api/x", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


async def test_rate_limit_per_address(echo: str) -> None:
    async with gateway_client(
        auth_urls=(echo,), todo_urls=(echo,), auth_rate_limit="3/minute"
    ) as client:
        statuses = [(await client.post("/auth/login", json={})).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = await client.post("/auth/login", json={})
        assert limited.json()["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        # Other routes, and other limited routes, have their own budgets.
        assert (await client.post("/auth/register", json={})).status_code == 200
        assert (await client.get("/api/x")).status_code == 200
        # A trailing slash is the same route.
        assert (await client.post("/auth/login/", json={})).status_code == 429


async def test_rate_limit_shared_through_redis(echo: str, redis_space: RedisSpace) -> None:
    prefix = f"{redis_space.prefix}gw-{secrets.token_hex(3)}:"
    shared = {
        "auth_urls": (echo,),
        "todo_urls": (echo,),
        "auth_rate_limit": "4/minute",
        "redis_url": redis_space.url,
        "redis_prefix": prefix,
    }
    async with gateway_client(**shared) as first, gateway_client(**shared) as second:
        statuses = [
            (await client.post("/auth/refresh", json={})).status_code
            for client in (first, second, first, second, first)
        ]
    assert statuses == [200, 200, 200, 200, 429]


async def test_rate_limit_storage_down_fails_open(echo: str) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    async with gateway_client(
        auth_urls=(echo,), todo_urls=(echo,), auth_rate_limit="1/minute", redis_url=dead_redis
    ) as client:
        statuses = [(await client.post("/auth/login", json={})).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        ready = await client.get("/health/ready")
        assert ready.status_code == 503 and "rate_limit_storage" in ready.text
