"""The rows of the table, in order: DESIGN.md's performance targets, then informational rows."""

from __future__ import annotations

from tests.bench.report import Report

# Row keys, in table order.
THROUGHPUT_DIRECT = "throughput_direct"
THROUGHPUT_GATEWAY = "throughput_gateway"
CACHE_HIT = "cache_hit"
FIRST_ES256 = "first_es256"
FIRST_ED25519 = "first_ed25519"
FIRST_RS256 = "first_rs256"
OPENSSL_FLOOR = "openssl_floor"
LOGINS = "logins"
LOGIN_FLOOR = "login_floor"
STALL = "stall"
REFRESH_REDIS = "refresh_redis"
REFRESH_SQL = "refresh_sql"
GATEWAY_LATENCY = "gateway_latency"
GATEWAY_IDLE = "gateway_idle"
EDGE_LATENCY = "edge_latency"
EDGE_THROUGHPUT = "edge_throughput"
EDGE_PYTHON = "edge_python"
JWKS = "jwks"
ASGI = "asgi"
CLIENT_CREDENTIALS = "client_credentials"
INTROSPECTION = "introspection"
PEER_LOGIN = "peer_login"
PEER_LIST = "peer_list"
VERIFIER_ADAPTERS = "verifier_adapters"
BA_SIGNIN = "betterauth_signin"
BA_SIGNIN_MATCHED = "betterauth_signin_matched"
BA_TOKEN = "betterauth_token"
BA_READ_SHIPPED = "betterauth_read_shipped"
BA_READ_LEAN = "betterauth_read_lean"
BA_VERIFY_REPEAT = "betterauth_verify_repeat"
BA_VERIFY_FIRST = "betterauth_verify_first"


def make_report(jwks_seconds: int) -> Report:
    report = Report()
    report.add(
        THROUGHPUT_DIRECT,
        "protected GET /api/{user_id}/tasks, valid token vs auth off — todo service directly",
        "≥ 0.90",
    )
    report.add(
        THROUGHPUT_GATEWAY,
        "protected GET /api/{user_id}/tasks, valid token vs auth off — through the gateway",
        "≥ 0.90",
    )
    report.add(
        CACHE_HIT, "verification of a token seen before (verified-token cache hit)", "≤ 5 µs"
    )
    report.add(FIRST_ES256, "first verification of a token (ES256, key cached)", "≤ 1.3 × joserfc")
    report.add(FIRST_ED25519, "first verification, Ed25519 (for comparison)", "— (1.3 × for ES256)")
    report.add(FIRST_RS256, "first verification, RS256 (for comparison)", "— (1.3 × for ES256)")
    report.add(OPENSSL_FLOOR, "ES256 verify: OpenSSL floor (`openssl speed ecdsap256`)", "—")
    report.add(LOGINS, "logins/s at saturation vs the Argon2 bound (cores ÷ one verify)", "≥ 0.85")
    report.add(
        LOGIN_FLOOR,
        "logins: the machine's CPU a login costs beside its hash (a run at a trivial Argon2 "
        "cost), and the ceiling that leaves the row above",
        "— (0.85 above needs a ceiling above it)",
    )
    report.add(STALL, "event-loop stall while 64 logins are in flight: /health/live p99", "≤ 20 ms")
    report.add(
        REFRESH_REDIS,
        "refresh rotations/s on one auth worker with Redis, p99",
        "≥ 1,500/s, p99 ≤ 25 ms",
    )
    report.add(
        REFRESH_SQL,
        "refresh rotations/s on one auth worker with the SQL store (SQLite), p99",
        "— (Redis: ≥ 1,500/s, p99 ≤ 25 ms)",
    )
    report.add(
        CLIENT_CREDENTIALS,
        "client-credentials grants/s, client_secret_basic / private_key_jwt, vs refresh "
        "rotations/s (Redis) in this run",
        "≥ 1 × each",
    )
    report.add(
        INTROSPECTION,
        "introspection of an access token: auth's CPU vs the todo service's for a protected list",
        "≤ 1.5 ×",
    )
    report.add(
        GATEWAY_LATENCY, "gateway: added p50 latency vs calling the upstream directly", "≤ 1 ms"
    )
    report.add(
        GATEWAY_IDLE,
        "gateway: added p50 in front of a stub upstream that answers at once, and in front of "
        "one that first idles 1 ms (no CPU): the gateway's own share, and what waiting costs it",
        "—",
    )
    report.add(
        EDGE_LATENCY,
        "edge engine (nginx, rendered configuration): added p50 vs calling the todo service "
        "directly, and its CPU a request",
        "≤ 0.2 ms",
    )
    report.add(EDGE_THROUGHPUT, "edge engine (nginx): throughput through it ÷ direct", "≥ 0.90")
    report.add(
        EDGE_PYTHON,
        "Python gateway in the same run: added p50, its CPU a request, throughput ÷ direct",
        "— (≤ 1 ms above)",
    )
    report.add(
        JWKS,
        f"JWKS fetches by the todo service during a {jwks_seconds} s load run, no key change",
        "0 (the scheduled max-age refresh shown, not counted)",
    )
    report.add(ASGI, "ASGI server: todo protected list, granian vs uvicorn", "—")
    report.add(PEER_LOGIN, "peer (FastAPI + fastapi-users): logins/s, ours ÷ peer", "—")
    report.add(PEER_LIST, "peer (FastAPI + fastapi-users): protected list req/s, ours ÷ peer", "—")
    report.add(
        VERIFIER_ADAPTERS,
        "verifier adapters: what verification adds per request through the FastAPI dependency, "
        "the ASGI middleware and the Litestar integration, ÷ the same framework's bare handler",
        "—",
    )
    add_better_auth(report)
    return report


def add_better_auth(report: Report) -> None:
    """The system the platform replaces (tests/bench/betterauth_peer.py), ours ÷ it."""
    target = "≥ 4 ×"
    what = "Better Auth peer (Node, JWT plugin, rate limiter off):"
    report.add(BA_SIGNIN, f"{what} sign-ins/s, each side's default password hash", target)
    report.add(
        BA_SIGNIN_MATCHED,
        f"{what} sign-ins/s, ours at an Argon2id cost matched to its scrypt's CPU",
        target,
    )
    report.add(BA_TOKEN, f"{what} token issuance, our refresh vs its /api/auth/token", target)
    report.add(
        BA_READ_SHIPPED,
        f"{what} protected read of the caller's data, its getSession as shipped (signs a JWT)",
        target,
    )
    report.add(
        BA_READ_LEAN,
        f"{what} protected read of the caller's data, getSession with disableSettingJwtHeader",
        target,
    )
    report.add(BA_VERIFY_REPEAT, f"{what} bare verification of a token seen before", target)
    report.add(BA_VERIFY_FIRST, f"{what} bare verification of a token not seen before", target)
