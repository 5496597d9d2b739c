"""What holds when nginx runs as several replicas. nginx counts its per-address limit in each
replica's own memory (tests/gateway/test_forwarding.py shows two replicas giving two budgets);
password guessing is then bounded by the auth service's per-account limit on failed logins,
whose counters live in Redis and are shared by every auth replica, whichever edge a request came
through. This test holds that claim on real processes."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx

from tests.gateway.edges import NGINX, start_edge
from tests.infra import RedisSpace, ServiceProcess, new_key_encryption_key, start_service


def test_failed_logins_are_limited_per_account_across_edge_and_auth_replicas(
    workdir: Path, redis_space: RedisSpace
) -> None:
    env = {
        "AUTH_KEY_ENCRYPTION_KEY": new_key_encryption_key(),
        "AUTH_REDIS_URL": redis_space.url,
        "AUTH_REDIS_PREFIX": f"{redis_space.prefix}auth-{secrets.token_hex(3)}:",
        "AUTH_LOGIN_FAILURE_LIMIT": "3/minute",
    }
    first = start_service("auth_service", workdir, env, name="auth0")
    second = ServiceProcess("auth_service", env=env, workdir=workdir, name="auth1").start()
    auths = f"{first.url},{second.url}"
    # Per-address limits far above the per-account one: the auth service must be what stops.
    edge_env = {
        "GATEWAY_AUTH_URL": auths,
        "GATEWAY_TODO_URL": auths,
        "GATEWAY_AUTH_RATE_LIMIT": "100/minute",
    }
    edges = [start_edge(NGINX, workdir / f"edge{i}", edge_env) for i in range(2)]
    try:
        email = f"victim-{secrets.token_hex(4)}@example.com"
        answers = [
            httpx.post(
                f"{edge.url}/auth/login",
                json={"email": email, "password": f"guess-{number}-{secrets.token_hex(2)}"},
                timeout=30,
            )
            for number, edge in enumerate(edges * 3)
        ]
        other = httpx.post(
            f"{edges[0].url}/auth/login",
            json={"email": f"other-{secrets.token_hex(4)}@example.com", "password": "whatever1"},
            timeout=30,
        )
    finally:
        for process in (*edges, second, first):
            process.stop()
    statuses = [answer.status_code for answer in answers]
    assert statuses[:3] == [401, 401, 401], [answer.text for answer in answers]
    assert statuses[3:] == [429, 429, 429]
    assert all(answer.json()["code"] == "rate_limited" for answer in answers[3:])
    # The limit is the account's, not the address's: another account from the same address
    # is still answered on its merits.
    assert other.status_code == 401
