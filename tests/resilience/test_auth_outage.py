"""The auth service killed: the todo service goes on verifying tokens with its cached keys."""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.infra import ServiceProcess, start_stack, wait_until
from tests.resilience.support import FAST_HASHING, NO_GATEWAY_LIMIT, PASSWORD, bearer, register

pytestmark = pytest.mark.slow

ROUNDS = 6


def failed_jwks_fetches(todo: ServiceProcess) -> float:
    """Background JWKS refreshes that failed, from the todo service's own metrics."""
    text = httpx.get(f"{todo.url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "token_verifier_jwks_fetches"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels.get("result") == "error"
    )


def test_todo_keeps_verifying_from_its_key_cache_while_auth_is_down(tmp_path: Path) -> None:
    env = {
        # The todo service refreshes its JWKS copy every second while auth is up, so the
        # outage spans several failed refreshes (retried every 5 s after a failure).
        "TODO_JWKS_MIN_REFRESH": "1",
        "TODO_JWKS_MAX_REFRESH": "1",
        **FAST_HASHING,
        **NO_GATEWAY_LIMIT,
    }
    stack = start_stack(tmp_path, env)
    try:
        todo = stack.todos[0]
        with httpx.Client(base_url=stack.url, timeout=30) as client:
            account = register(client, "auth-down")
            headers = bearer(account.access_token)
            tasks = f"/api/{account.user_id}/tasks"
            assert client.post(tasks, json={"title": "before"}, headers=headers).status_code == 201
            # Tokens the todo service has not seen before the outage: each must be verified
            # with a cached key, not answered from a cache of tokens already verified.
            unseen = [
                client.post(
                    "/auth/login", json={"email": account.email, "password": PASSWORD}
                ).json()["access_token"]
                for _ in range(ROUNDS)
            ]

            stack.auths[0].kill()
            failed_before = failed_jwks_fetches(todo)
            numbers = itertools.count()
            checks: list[tuple[int, int, int, int]] = []

            def still_serving_over_the_outage() -> bool:
                """One round of checks; done after 2 failed key refreshes and ROUNDS rounds."""
                n = next(numbers)
                fresh = bearer(unseen[n]) if n < ROUNDS else headers
                created = client.post(tasks, json={"title": f"during-{n}"}, headers=fresh)
                listed = client.get(tasks, headers=headers)
                ready = httpx.get(f"{todo.url}/health/ready", timeout=10)
                login = client.post(
                    "/auth/login", json={"email": account.email, "password": "whatever pass"}
                )
                checks.append(
                    (created.status_code, listed.status_code, ready.status_code, login.status_code)
                )
                assert created.status_code == 201, created.text
                assert listed.status_code == 200, listed.text
                assert listed.json()["total"] == n + 2
                assert ready.status_code == 200, ready.text
                # The gateway says auth is away: a clear 502/503, never a hang or a 500.
                assert login.status_code in (502, 503), login.text
                assert login.json()["code"] == "upstream_unavailable"
                return failed_jwks_fetches(todo) - failed_before >= 2 and len(checks) >= ROUNDS

            wait_until(
                still_serving_over_the_outage,
                timeout=30,
                every=0.25,
                what="the todo service to serve through two failed JWKS refreshes",
            )
            assert stack.auths[0].proc is not None
            assert stack.auths[0].proc.poll() is not None  # auth stayed down throughout
            # A forged token is still rejected: the outage opens no door.
            forged = account.access_token[:-4] + (
                "AAAA" if account.access_token[-4:] != "AAAA" else "BBBB"
            )
            assert client.get(tasks, headers=bearer(forged)).status_code == 401
    finally:
        stack.stop()
