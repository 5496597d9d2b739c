"""The platform under load: auth, the todo service with auth on and off, a gateway in front of
each; and the helpers the measurements share (health probe, direct session creation, metrics)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass

import httpx

from tests.bench.procs import Account, Resources, Service, login, register, seed_tasks
from tests.infra import REDIS_URL

TASKS_PER_USER = 20


@dataclass
class Platform:
    """Auth (PostgreSQL + Redis), the todo service with auth on and its auth-off twin on one
    PostgreSQL database, and a gateway in front of each todo."""

    auth: Service
    todo_on: Service
    todo_off: Service
    gateway_on: Service
    gateway_off: Service
    auth_database: str
    auth_redis_prefix: str
    todo_env: dict[str, str]
    account: Account

    def fresh_token(self) -> str:
        """A new access token (a login), so no run outlives the token's 15 minutes."""
        self.account = login(self.auth.url, self.account)
        return self.account.access_token

    @property
    def tasks_path(self) -> str:
        return f"/api/{self.account.user_id}/tasks"

    def stop(self) -> None:
        for service in (self.gateway_on, self.gateway_off, self.todo_on, self.todo_off, self.auth):
            service.stop()


def start_platform(resources: Resources) -> Platform:
    auth_db = resources.database("auth")
    prefix = resources.redis_prefix("auth")
    auth = resources.auth(
        "auth",
        {
            "AUTH_DATABASE_URL": auth_db,
            "AUTH_REDIS_URL": REDIS_URL,
            "AUTH_REDIS_PREFIX": prefix,
            # 64 logins in flight must be admitted (2 hashing, 62 queued), not answered 503.
            "AUTH_HASH_QUEUE": "64",
        },
    )
    account = register(auth.url, "bench")
    todo_db = resources.database("todo")
    resources.migrate_todo(todo_db)
    todo_env = {"TODO_DATABASE_URL": todo_db, "TODO_JWKS_URL": f"{auth.url}/.well-known/jwks.json"}
    todo_on = resources.todo("todo-on", todo_env)
    todo_off = resources.todo(
        "todo-authoff",
        {**todo_env, "BENCH_STUB_SUB": account.user_id},
        module="tests.bench.authoff",
        args=(),
    )
    seed_tasks(todo_on.url, account, TASKS_PER_USER)
    gateway_on = resources.gateway("gateway-on", auth, todo_on)
    gateway_off = resources.gateway("gateway-authoff", auth, todo_off)
    return Platform(
        auth, todo_on, todo_off, gateway_on, gateway_off, auth_db, prefix, todo_env, account
    )


def check_list(url: str, token: str) -> None:
    response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    if response.status_code != 200 or response.json().get("total") != TASKS_PER_USER:
        raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:200]}")


def metric_samples(base_url: str, name: str) -> list[tuple[str, float]]:
    """Each sample of one metric in a service's /metrics: its labels (`{…}` or "") and value."""
    samples = []
    for line in httpx.get(f"{base_url}/metrics", timeout=10).text.splitlines():
        if line.startswith((name + "{", name + " ")):
            series, value = line.rsplit(" ", 1)
            samples.append((series.removeprefix(name), float(value)))
    return samples


def jwks_fetch_counts(todo_url: str) -> dict[str, float]:
    """token_verifier_jwks_fetches_total by its `reason` label (start, scheduled, unknown_kid)."""
    counts: dict[str, float] = {}
    for labels, value in metric_samples(todo_url, "token_verifier_jwks_fetches_total"):
        match = re.search(r'reason="([^"]*)"', labels)
        reason = match.group(1) if match else "?"
        counts[reason] = counts.get(reason, 0.0) + value
    return counts


def wait_hash_queue_empty(auth_url: str, timeout: float = 60.0) -> None:
    """Until `auth_password_hash_queue_depth` is 0: logins wrk abandoned at the end of a run
    still hash, and the next run must not start on top of them."""
    deadline = time.monotonic() + timeout
    while True:
        samples = metric_samples(auth_url, "auth_password_hash_queue_depth")
        if not samples:
            raise RuntimeError("auth_password_hash_queue_depth is not in /metrics")
        depth = samples[0][1]
        if depth == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"hash queue still {depth:.0f} deep after {timeout:.0f} s")
        time.sleep(0.1)


class HealthProbe(threading.Thread):
    """GET /health/live every `every` seconds on one keep-alive connection, from `start_after`
    seconds for `run_for` seconds; latencies in ms."""

    def __init__(
        self, url: str, *, start_after: float, run_for: float, every: float = 0.01
    ) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.every = every
        self.start_after = start_after
        self.run_for = run_for
        self.latencies_ms: list[float] = []
        self.failures = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        if self._stop_event.wait(self.start_after):
            return
        deadline = time.monotonic() + self.run_for
        with httpx.Client(timeout=10) as client:
            client.get(f"{self.url}/health/live")  # connect outside the measurement
            while not self._stop_event.is_set() and time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    ok = client.get(f"{self.url}/health/live").status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = (time.perf_counter() - started) * 1000
                if ok:
                    self.latencies_ms.append(elapsed)
                else:
                    self.failures += 1
                self._stop_event.wait(self.every)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=15)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def _create_sessions(
    database_url: str, redis_url: str | None, prefix: str, user_id: str, count: int
) -> list[str]:
    """Refresh sessions made straight through the service's own store (no Argon2 per token)."""
    from auth_service.config import Settings
    from auth_service.sessions.factory import open_store
    from kit.database import create_engine, session_factory

    settings = Settings(database_url=database_url, redis_url=redis_url, redis_prefix=prefix)
    engine = create_engine(database_url)
    store = open_store(settings, session_factory(engine))
    tokens: list[str] = []
    limit = asyncio.Semaphore(16)

    async def one() -> None:
        async with limit:
            issued = await store.create(
                user_id=user_id, user_agent="bench", ip="127.0.0.1", now=time.time()
            )
            tokens.append(issued.refresh_token)

    try:
        for start in range(0, count, 2000):
            await asyncio.gather(*(one() for _ in range(min(2000, count - start))))
    finally:
        await store.close()
        await engine.dispose()
    return tokens


def create_sessions(
    database_url: str, redis_url: str | None, prefix: str, user_id: str, count: int
) -> list[str]:
    return asyncio.run(_create_sessions(database_url, redis_url, prefix, user_id, count))
