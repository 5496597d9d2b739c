"""The auth service as a real process: PyJWT verification, restarts, configuration errors."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt as pyjwt
import pytest

from tests.auth.conftest import STRONG_PASSWORD, unique_email
from tests.infra import (
    RedisSpace,
    ServiceProcess,
    fresh_postgres_database,
    new_key_encryption_key,
    run_cli,
    start_service,
    wait_until,
)


def kek() -> str:
    return new_key_encryption_key()


def start_auth(workdir: Path, env: dict[str, str]) -> ServiceProcess:
    return start_service("auth_service", workdir, env)


def test_pyjwt_verifies_our_token_from_the_jwks_alone(workdir: Path) -> None:
    env = {"AUTH_KEY_ENCRYPTION_KEY": kek()}
    auth = start_auth(workdir, env)
    try:
        body = httpx.post(
            f"{auth.url}/auth/register", json={"email": unique_email(), "password": STRONG_PASSWORD}
        ).json()
        jwks_client = pyjwt.PyJWKClient(f"{auth.url}/.well-known/jwks.json")
        signing_key = jwks_client.get_signing_key_from_jwt(body["access_token"])
        claims = pyjwt.decode(
            body["access_token"],
            signing_key.key,
            algorithms=["ES256"],
            audience="todo-api",
            issuer="http://127.0.0.1:8000",
        )
        assert claims["sub"] == body["user"]["id"]
        assert pyjwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"
    finally:
        auth.stop()


def test_restart_keeps_users_and_keys_and_a_wrong_key_stops_the_service(workdir: Path) -> None:
    env = {"AUTH_KEY_ENCRYPTION_KEY": kek()}
    auth = start_auth(workdir, env)
    email = unique_email("persist")
    try:
        first = httpx.post(
            f"{auth.url}/auth/register", json={"email": email, "password": STRONG_PASSWORD}
        )
        assert first.status_code == 201
        jwks_before = httpx.get(f"{auth.url}/.well-known/jwks.json").json()
    finally:
        auth.stop()

    auth = ServiceProcess("auth_service", env=env, workdir=workdir).start()
    try:
        login = httpx.post(
            f"{auth.url}/auth/login", json={"email": email, "password": STRONG_PASSWORD}
        )
        assert login.status_code == 200
        assert httpx.get(f"{auth.url}/.well-known/jwks.json").json() == jwks_before
        me = httpx.get(
            f"{auth.url}/auth/me",
            headers={"Authorization": f"Bearer {first.json()['access_token']}"},
        )
        assert me.status_code == 200
    finally:
        auth.stop()

    wrong = run_cli("auth_service", "serve", env={"AUTH_KEY_ENCRYPTION_KEY": kek()}, cwd=workdir)
    assert wrong.returncode == 2
    lines = [line for line in wrong.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, wrong.stderr
    assert "AUTH_KEY_ENCRYPTION_KEY" in lines[0]
    assert "Traceback" not in wrong.stderr


async def test_full_hash_queue_answers_503_overloaded(workdir: Path) -> None:
    # One worker, no queue, and a hash slow enough that a burst overlaps it.
    env = {
        "AUTH_KEY_ENCRYPTION_KEY": kek(),
        "AUTH_HASH_WORKERS": "1",
        "AUTH_HASH_QUEUE": "0",
        "AUTH_ARGON2_MEMORY_KIB": "65536",
        "AUTH_ARGON2_TIME_COST": "4",
    }
    auth = start_auth(workdir, env)
    try:
        async with httpx.AsyncClient(base_url=auth.url, timeout=30) as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/auth/register",
                        json={"email": unique_email("burst"), "password": STRONG_PASSWORD},
                    )
                    for _ in range(6)
                )
            )
            metrics = (await client.get("/metrics")).text
        statuses = sorted(response.status_code for response in responses)
        assert 201 in statuses, statuses
        overloaded = [response for response in responses if response.status_code == 503]
        assert overloaded, statuses
        assert overloaded[0].json()["code"] == "overloaded"
        assert overloaded[0].headers["retry-after"] == "1"
        assert "auth_password_hash_queue_depth" in metrics
    finally:
        auth.stop()


def hashing_workers(service_pid: int) -> list[int]:
    """The service's grandchildren: the forkserver is its child, the workers are its own."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        try:
            after_name = (entry / "stat").read_text().rsplit(")", 1)[1]
            parents[int(entry.name)] = int(after_name.split()[1])
        except (OSError, ValueError, IndexError):
            continue  # not a process, or one that ended while we looked
    children = {pid for pid, parent in parents.items() if parent == service_pid}
    return [pid for pid, parent in parents.items() if parent in children]


def test_dead_hashing_workers_show_in_readiness_then_a_new_pool_serves(workdir: Path) -> None:
    auth = start_auth(workdir, {"AUTH_KEY_ENCRYPTION_KEY": kek(), "AUTH_HASH_WORKERS": "2"})
    try:
        assert auth.proc is not None
        ready = httpx.get(f"{auth.url}/health/ready", timeout=10)
        assert ready.status_code == 200 and "password_hashing" in ready.json()["checks"]
        wait_until(
            lambda: len(hashing_workers(auth.proc.pid)) == 2,  # type: ignore[union-attr]
            timeout=30,
            what="both hashing workers to start",
        )
        workers = hashing_workers(auth.proc.pid)
        # One death breaks the pool: the stdlib then ends the other worker itself.
        os.kill(workers[0], signal.SIGKILL)
        probes: list[httpx.Response] = []

        def not_ready() -> bool:  # a probe may beat the pool to the news of the death
            probes.append(httpx.get(f"{auth.url}/health/ready", timeout=10))
            return probes[-1].status_code != 200

        wait_until(not_ready, timeout=10, what="readiness to report the dead worker")
        assert probes[-1].status_code == 503, probes[-1].text
        assert probes[-1].json()["failing"] == ["password_hashing"]
        assert httpx.get(f"{auth.url}/health/ready", timeout=10).status_code == 200
        registered = httpx.post(
            f"{auth.url}/auth/register",
            json={"email": unique_email("after"), "password": STRONG_PASSWORD},
            timeout=30,
        )
        assert registered.status_code == 201, registered.text
        assert not set(hashing_workers(auth.proc.pid)) & set(workers)
    finally:
        auth.stop()


def test_generated_key_encryption_key_is_private(workdir: Path) -> None:
    result = run_cli("auth_service", "migrate", env={}, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "WARNING" in result.stderr and "AUTH_KEY_ENCRYPTION_KEY" in result.stderr
    key_file = workdir / ".data" / "key-encryption-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(base64.urlsafe_b64decode(key_file.read_text().strip() + "=")) == 32


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AUTH_SIGNING_ALG", "HS256"),
        ("AUTH_SIGNING_ALG", "none"),
        ("AUTH_ACCESS_TOKEN_TTL", "0"),
        ("AUTH_REFRESH_TOKEN_TTL", "-5"),
        ("AUTH_SESSION_MAX_AGE", "soon"),
        ("AUTH_DATABASE_URL", "mysql://localhost/x"),
        ("AUTH_REDIS_URL", "redis://:bad:port"),
        ("AUTH_ISSUER", "not a url"),
        ("AUTH_KEY_ENCRYPTION_KEY", "c2hvcnQ"),
        ("AUTH_KEY_ENCRYPTION_KEY", "!!!not base64!!!"),
        ("AUTH_LOGIN_FAILURE_LIMIT", "ten per minute"),
        ("AUTH_PORT", "70000"),
    ],
)
def test_bad_configuration_stops_with_one_line(workdir: Path, variable: str, value: str) -> None:
    env = {"AUTH_KEY_ENCRYPTION_KEY": kek(), variable: value}
    result = run_cli("auth_service", "serve", env=env, cwd=workdir, timeout=30)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_rotate_keys_command(workdir: Path) -> None:
    env = {"AUTH_KEY_ENCRYPTION_KEY": kek()}
    assert run_cli("auth_service", "migrate", env=env, cwd=workdir).returncode == 0
    too_soon = run_cli("auth_service", "rotate-keys", env=env, cwd=workdir)
    assert too_soon.returncode == 2
    assert "--force" in too_soon.stderr
    forced = run_cli("auth_service", "rotate-keys", "--force", env=env, cwd=workdir)
    assert forced.returncode == 0, forced.stderr
    assert "active key is now" in forced.stdout


@pytest.fixture
def replicas_database() -> Iterator[str]:
    """A database of their own: the session database's keys are under another KEK."""
    with fresh_postgres_database("replicas") as url:
        yield url


def test_two_replicas_share_sessions_through_redis(
    workdir: Path, replicas_database: str, redis_space: RedisSpace
) -> None:
    """A token rotated on one auth process is rotated for the other (one Redis, one database)."""
    env = {
        "AUTH_KEY_ENCRYPTION_KEY": kek(),
        "AUTH_DATABASE_URL": replicas_database,
        "AUTH_REDIS_URL": redis_space.url,
        "AUTH_REDIS_PREFIX": f"{redis_space.prefix}replicas-{secrets.token_hex(3)}:",
        "AUTH_REFRESH_REUSE_GRACE": "0",
    }
    first = start_service("auth_service", workdir, env, name="auth-a")
    second = ServiceProcess("auth_service", env=env, workdir=workdir, name="auth-b").start()
    try:
        body = httpx.post(
            f"{first.url}/auth/register",
            json={"email": unique_email(), "password": STRONG_PASSWORD},
        ).json()
        original = body["refresh_token"]
        rotated = httpx.post(f"{second.url}/auth/refresh", json={"refresh_token": original})
        assert rotated.status_code == 200
        # The original, presented to the first process, is reuse: it knows it was rotated.
        reused = httpx.post(f"{first.url}/auth/refresh", json={"refresh_token": original})
        assert reused.status_code == 401
        assert reused.json()["code"] == "refresh_token_reused"
        ended = httpx.post(
            f"{second.url}/auth/refresh", json={"refresh_token": rotated.json()["refresh_token"]}
        )
        assert ended.json()["code"] == "session_revoked"
    finally:
        second.stop()
        first.stop()
