"""The gateway's contract, held by both edges (tests/gateway/edges.py): the Python gateway and
nginx on the rendered configuration, each a real process in front of real loopback upstreams.

Where nginx does a thing differently, the test says so beside the assertion (README, "Edge").
"""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.echo import GZIPPED, echo_server
from tests.gateway.edges import EDGES, NGINX, PYTHON, start_edge
from tests.infra import RedisSpace, ServiceProcess, free_port

SECURITY_HEADERS = {
    "strict-transport-security",
    "x-content-type-options",
    "referrer-policy",
    "x-frame-options",
    "content-security-policy",
}
ALLOWED_ORIGIN = "https://app.example.com"
StartEdge = Callable[..., ServiceProcess]


@pytest.fixture(scope="module")
def auth_echo() -> Iterator[str]:
    with echo_server() as url:
        yield url


@pytest.fixture(scope="module")
def todo_echo() -> Iterator[str]:
    with echo_server() as url:
        yield url


@pytest.fixture(scope="module", params=EDGES)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def edge(
    kind: str, auth_echo: str, todo_echo: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The edge most tests share: auth and todo each an echo, one CORS origin, 3 credential
    requests a minute (only the rate-limit test posts to those routes)."""
    process = start_edge(
        kind,
        tmp_path_factory.mktemp(f"edge-{kind}"),
        {
            "GATEWAY_AUTH_URL": auth_echo,
            "GATEWAY_TODO_URL": todo_echo,
            "GATEWAY_CORS_ORIGINS": ALLOWED_ORIGIN,
            "GATEWAY_AUTH_RATE_LIMIT": "3/minute",
        },
    )
    yield process
    process.stop()


@pytest.fixture
def other_edge(kind: str, workdir: Path) -> Iterator[StartEdge]:
    """Edges of their own configuration, stopped after the test."""
    started: list[ServiceProcess] = []

    def start(**env: str) -> ServiceProcess:
        process = start_edge(kind, workdir / f"edge-{len(started)}", env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def received_headers(response: httpx.Response) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        headers.setdefault(name, []).append(value)
    return headers


def raw_request(edge: ServiceProcess, request_line: bytes) -> tuple[int, bytes]:
    """A request sent byte for byte (an HTTP client would normalise the target)."""
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as connection:
        connection.sendall(request_line + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


def test_routes_to_the_service_that_owns_the_path(
    edge: ServiceProcess, auth_echo: str, todo_echo: str
) -> None:
    response = httpx.put(
        f"{edge.url}/api/u/tasks/t?x=1&y=%20z",
        content=b'{"title": "t"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    seen = response.json()
    assert (seen["method"], seen["path"], seen["port"]) == (
        "PUT",
        "/api/u/tasks/t",
        port_of(todo_echo),
    )
    assert seen["query"] == "x=1&y=%20z"
    assert seen["body"] == '{"title": "t"}'
    for path in ("/auth/sessions/abc", "/oauth/token", "/.well-known/jwks.json"):
        auth_seen = httpx.delete(f"{edge.url}{path}").json()
        assert (auth_seen["path"], auth_seen["port"]) == (path, port_of(auth_echo))
    metadata = httpx.get(f"{edge.url}/.well-known/oauth-protected-resource").json()
    assert metadata["port"] == port_of(todo_echo)


def test_internal_paths_are_never_forwarded(edge: ServiceProcess) -> None:
    for path in ("/internal/events", "/internal/", "/internal"):
        response = httpx.get(f"{edge.url}{path}")
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "not_found"


def test_path_normalisation(edge: ServiceProcess, kind: str) -> None:
    # The upstream sees the path the edge routed on (and limited): decoded, then re-encoded.
    seen = httpx.get(f"{edge.url}/api/a%20b/%7Ex").json()
    assert seen["raw_path"] == "/api/a%20b/~x"
    # Dot segments, plain or encoded, are refused rather than resolved across routes.
    for target in (b"/auth/../api/x/tasks", b"/api/%2e%2e/internal/x", b"/api/x/./y"):
        status, answer = raw_request(edge, b"GET " + target + b" HTTP/1.1")
        assert status == 400, (target, answer[:300])
        assert b"malformed_request" in answer
        assert b"application/problem+json" in answer
    # NUL and control characters, encoded: a 4xx problem or forwarded, never a 5xx.
    for target in (b"/api/x%00y", b"/api/x%01y", b"/api/%ff%fe"):
        status, answer = raw_request(edge, b"GET " + target + b" HTTP/1.1")
        assert status < 500, (target, answer[:300])
        if status >= 400:
            assert b"application/problem+json" in answer, (target, answer[:300])
    # Raw, the request line does not parse: 400 (nginx's is a problem body; uvicorn answers
    # plain text before the Python gateway sees the request).
    for target in (b"/api/x\x01y", b"/api/x\x7fy", b"/api/x\x00y"):
        status, answer = raw_request(edge, b"GET " + target + b" HTTP/1.1")
        assert status == 400, (target, answer[:300])
        assert (b"application/problem+json" in answer) == (kind == NGINX), answer[:300]


def test_headers_the_upstream_sees(edge: ServiceProcess, kind: str) -> None:
    response = httpx.get(
        f"{edge.url}/api/x",
        headers={
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "secret",
            "Keep-Alive": "timeout=5",
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "https",
            "Forwarded": "for=6.6.6.6",
            "X-Real-IP": "6.6.6.6",
            "Authorization": "Bearer abc",
            "X-Request-ID": "client-chosen-id-123",
        },
    )
    seen = received_headers(response)
    for dropped in ("keep-alive", "forwarded", "x-real-ip"):
        assert dropped not in seen, dropped
    # A header the client names in Connection is dropped by the Python gateway; nginx has no
    # way to drop headers by name at run time and passes it on (README, Edge: differences).
    assert ("x-hop" in seen) == (kind == NGINX)
    assert seen["x-forwarded-for"] == ["127.0.0.1"]  # the peer, not the spoofed value
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == [f"127.0.0.1:{edge.port}"]
    assert seen["authorization"] == ["Bearer abc"]
    assert seen["x-request-id"] == ["client-chosen-id-123"]
    assert response.headers["x-request-id"] == "client-chosen-id-123"

    malformed = httpx.get(f"{edge.url}/api/x", headers={"X-Request-ID": "bad id\twith spaces"})
    created = malformed.headers["x-request-id"]
    assert created != "bad id\twith spaces" and len(created) >= 16
    assert received_headers(malformed)["x-request-id"] == [created]
    # An answer the edge gives itself carries one too.
    assert len(httpx.get(f"{edge.url}/nowhere").headers["x-request-id"]) >= 16


def test_no_header_is_invented_and_bodies_pass_untouched(edge: ServiceProcess) -> None:
    with httpx.Client(base_url=edge.url) as client:
        for name in ("user-agent", "accept", "accept-encoding"):
            del client.headers[name]
        response = client.post("/api/x", content=b"\x00raw bytes")
        seen = received_headers(response)
        for invented in ("user-agent", "accept", "accept-encoding", "content-type"):
            assert invented not in seen, invented
        assert seen["content-length"] == ["10"]
        assert response.json()["body"] == "\x00raw bytes"

        with client.stream("GET", "/api/gzip", headers={"Accept-Encoding": "gzip"}) as relayed:
            assert relayed.headers["content-encoding"] == "gzip"
            assert b"".join(relayed.iter_raw()) == GZIPPED


def test_head_is_forwarded_without_a_body(edge: ServiceProcess) -> None:
    response = httpx.head(f"{edge.url}/api/x")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-type"] == "application/json"


def test_every_set_cookie_survives(edge: ServiceProcess) -> None:
    response = httpx.get(f"{edge.url}/auth/cookies")
    assert sorted(response.headers.get_list("set-cookie")) == ["a=1; Path=/", "b=2; Path=/"]
    # The edge keeps no cookie of its own: the next caller sends none upstream.
    assert "cookie" not in received_headers(httpx.get(f"{edge.url}/auth/x"))
    own = httpx.get(f"{edge.url}/auth/x", headers={"Cookie": "mine=1"})
    assert received_headers(own)["cookie"] == ["mine=1"]


def test_security_headers_everywhere(edge: ServiceProcess) -> None:
    for path in ("/api/x", "/nowhere", "/internal/x", "/", "/app.js", "/health/live", "/metrics"):
        response = httpx.get(f"{edge.url}{path}")
        assert set(response.headers) >= SECURITY_HEADERS, path
        assert response.headers["x-content-type-options"] == "nosniff"
    nowhere = httpx.get(f"{edge.url}/nowhere")
    assert nowhere.status_code == 404
    assert nowhere.headers["content-type"].startswith("application/problem+json")
    assert nowhere.json()["code"] == "not_found"
    # The web client is served by the edge, with the types a nosniff browser needs.
    index = httpx.get(f"{edge.url}/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    script = httpx.get(f"{edge.url}/app.js")
    assert "javascript" in script.headers["content-type"]
    # An upstream's own security headers are replaced, never doubled.
    assert len(httpx.get(f"{edge.url}/api/x").headers.get_list("x-frame-options")) == 1


def test_health_and_metrics(edge: ServiceProcess) -> None:
    assert httpx.get(f"{edge.url}/health/live").status_code == 200
    assert httpx.get(f"{edge.url}/health/ready").status_code == 200
    metrics = httpx.get(f"{edge.url}/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert any(
        line and not line.startswith("#") and len(line.split(" ")) == 2
        for line in metrics.text.splitlines()
    )


def test_body_limits(edge: ServiceProcess) -> None:
    too_big = httpx.post(f"{edge.url}/api/x", content=b"x" * (64 * 1024 + 1))
    assert too_big.status_code == 413
    assert too_big.json()["code"] == "payload_too_large"
    assert set(too_big.headers) >= SECURITY_HEADERS
    # Just at the limit passes; the same excess without a declared length is refused too.
    at_limit = httpx.post(f"{edge.url}/api/x", content=b"x" * (64 * 1024))
    assert at_limit.status_code == 200

    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b"x" * (16 * 1024)

    unsized = httpx.post(f"{edge.url}/api/x", content=chunks())
    assert unsized.status_code == 413
    assert unsized.json()["code"] == "payload_too_large"
    big = httpx.get(f"{edge.url}/api/big")  # over any buffer: streamed through
    assert big.status_code == 200 and big.content == b"x" * (1024 * 1024)
    chunked = httpx.get(f"{edge.url}/api/chunked")  # no length: streamed through
    assert chunked.status_code == 200 and chunked.content == b"first,second,third"
    assert set(chunked.headers) >= SECURITY_HEADERS


def test_round_robin_and_failover(other_edge: StartEdge, auth_echo: str, todo_echo: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with echo_server() as second:
        edge = other_edge(
            GATEWAY_AUTH_URL=auth_echo, GATEWAY_TODO_URL=f"{todo_echo},{dead},{second}"
        )
        answers = [httpx.get(f"{edge.url}/api/x") for _ in range(12)]
    assert [answer.status_code for answer in answers] == [200] * 12
    # Both live replicas served, the dead one was skipped (a POST too: it was never sent).
    assert {answer.json()["port"] for answer in answers} == {port_of(todo_echo), port_of(second)}


def test_upstream_down_and_slow(other_edge: StartEdge, todo_echo: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    edge = other_edge(
        GATEWAY_AUTH_URL=dead, GATEWAY_TODO_URL=todo_echo, GATEWAY_READ_TIMEOUT_MS="300"
    )
    down = httpx.post(f"{edge.url}/auth/login", json={})
    assert down.status_code == 503
    assert down.headers["content-type"].startswith("application/problem+json")
    assert down.json()["code"] == "upstream_unavailable"
    assert down.headers["retry-after"] == "2"
    assert set(down.headers) >= SECURITY_HEADERS
    slow = httpx.get(f"{edge.url}/api/slow", params={"seconds": "2"})
    assert slow.status_code == 504
    assert slow.json()["code"] == "upstream_timeout"
    assert "retry-after" not in slow.headers
    ready = httpx.get(f"{edge.url}/health/ready")
    assert ready.status_code == 503
    assert "auth" in ready.text


def test_an_upstream_that_breaks_off_is_a_502(other_edge: StartEdge, todo_echo: str) -> None:
    # It takes the connection and closes it unanswered: connected, so not "unavailable" (503).
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        edge = other_edge(GATEWAY_AUTH_URL=f"http://127.0.0.1:{port}", GATEWAY_TODO_URL=todo_echo)

        def close_one() -> None:
            connection, _ = listener.accept()
            connection.recv(65536)
            connection.close()

        closer = threading.Thread(target=close_one, daemon=True)
        closer.start()
        broken = httpx.post(f"{edge.url}/auth/login", json={}, timeout=10)
        closer.join(timeout=10)
    assert broken.status_code == 502
    assert broken.json()["code"] == "upstream_unavailable"


def test_cors_only_for_listed_origins(edge: ServiceProcess) -> None:
    allowed = httpx.options(
        f"{edge.url}/api/x",
        headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert allowed.status_code in (200, 204)
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    simple = httpx.get(f"{edge.url}/api/x", headers={"Origin": ALLOWED_ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
    for origin in ("https://evil.example", "https://app.example.com.evil.example", "null"):
        other = httpx.get(f"{edge.url}/api/x", headers={"Origin": origin})
        assert "access-control-allow-origin" not in other.headers, origin
        preflight = httpx.options(
            f"{edge.url}/api/x", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in preflight.headers, origin


def test_rate_limit_per_address(edge: ServiceProcess) -> None:
    statuses = [httpx.post(f"{edge.url}/auth/login", json={}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = httpx.post(f"{edge.url}/auth/login", json={})
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert set(limited.headers) >= SECURITY_HEADERS
    # Other routes, other limited routes and other methods have their own budgets.
    assert httpx.post(f"{edge.url}/auth/register", json={}).status_code == 200
    assert httpx.get(f"{edge.url}/auth/login").status_code == 200
    assert httpx.get(f"{edge.url}/api/x").status_code == 200
    # A trailing slash is the same route.
    assert httpx.post(f"{edge.url}/auth/login/", json={}).status_code == 429


def test_rate_limit_across_replicas(
    kind: str, other_edge: StartEdge, auth_echo: str, todo_echo: str, redis_space: RedisSpace
) -> None:
    """Two edge replicas, 4 requests a minute. The Python gateway counts in Redis (the replicas
    share one budget); nginx counts in each replica (two budgets: README, Edge), with the auth
    service's per-account limit as the shared backstop (tests/gateway/test_edge_replicas.py)."""
    env = {
        "GATEWAY_AUTH_URL": auth_echo,
        "GATEWAY_TODO_URL": todo_echo,
        "GATEWAY_AUTH_RATE_LIMIT": "4/minute",
        "GATEWAY_REDIS_URL": redis_space.url,
        "GATEWAY_REDIS_PREFIX": f"{redis_space.prefix}gw-{secrets.token_hex(3)}:",
    }
    first, second = other_edge(**env), other_edge(**env)
    statuses = [
        httpx.post(f"{edge.url}/auth/refresh", json={}).status_code for edge in (first, second) * 5
    ]
    if kind == PYTHON:
        assert statuses == [200] * 4 + [429] * 6
    else:
        assert statuses == [200] * 8 + [429] * 2


def test_python_rate_limit_storage_down_fails_open(workdir: Path, auth_echo: str) -> None:
    """The Python gateway only: nginx keeps its counters in its own shared memory."""
    edge = start_edge(
        PYTHON,
        workdir,
        {
            "GATEWAY_AUTH_URL": auth_echo,
            "GATEWAY_TODO_URL": auth_echo,
            "GATEWAY_AUTH_RATE_LIMIT": "1/minute",
            "GATEWAY_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        },
    )
    try:
        statuses = [httpx.post(f"{edge.url}/auth/login", json={}).status_code for _ in range(3)]
        ready = httpx.get(f"{edge.url}/health/ready")
    finally:
        edge.stop()
    assert statuses == [200, 200, 200]
    assert ready.status_code == 503 and "rate_limit_storage" in ready.text
