"""SIGKILL of the auth process in the middle of refresh rotations, at random points, many
times over, on both session stores. Afterwards every session is either rotated or not: its
last known token or exactly one successor of it works, never both as branches, never two
successors. Checked twice: in the store itself (one linear chain of tokens per session) and
through the API (the grace answer names one successor; reuse ends the whole session)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

from auth_service.sessions.tokens import digest
from tests.infra import (
    RedisSpace,
    ServiceProcess,
    fresh_redis_prefix,
    new_key_encryption_key,
    start_service,
)
from tests.resilience.support import FAST_HASHING, NO_LOCKOUT, PASSWORD, claims, new_email

pytestmark = pytest.mark.slow

# Runs per store (a restart each): 2 x 10 kills by default; raise it for a longer soak.
RUNS = int(os.environ.get("RESILIENCE_CRASH_RUNS", "10"))
SESSIONS_PER_RUN = 6
SEED = int(os.environ.get("RESILIENCE_SEED", str(random.SystemRandom().randrange(1 << 30))))


@dataclass
class StoredToken:
    digest: str
    session_id: str
    retired: bool
    successor: str | None


@dataclass
class StoredSession:
    id: str
    current: str


@dataclass
class Chain:
    """One session as its client saw it: the tokens it received, oldest first."""

    session_id: str
    tokens: list[str]
    rotations: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def current(self) -> str:
        return self.tokens[-1]


# --- what the stores hold ---------------------------------------------------------------------


def read_sqlite(path: Path) -> tuple[list[StoredSession], list[StoredToken]]:
    db = sqlite3.connect(path, timeout=30)
    try:
        sessions = [
            StoredSession(str(sid), str(cur))
            for sid, cur in db.execute("SELECT id, current_digest FROM refresh_sessions")
        ]
        tokens = [
            StoredToken(str(d), str(sid), retired is not None, succ)
            for d, sid, retired, succ in db.execute(
                "SELECT digest, session_id, retired_at, successor_digest FROM refresh_tokens"
            )
        ]
    finally:
        db.close()
    return sessions, tokens


def read_redis(url: str, prefix: str) -> tuple[list[StoredSession], list[StoredToken]]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        sessions = [
            StoredSession(key.removeprefix(f"{prefix}s:"), str(client.hget(key, "cur")))
            for key in client.scan_iter(match=f"{prefix}s:*", count=1000)
        ]
        tokens = []
        for key in client.scan_iter(match=f"{prefix}t:*", count=1000):
            record = {str(name): str(value) for name, value in client.hgetall(key).items()}
            tokens.append(
                StoredToken(
                    key.removeprefix(f"{prefix}t:"),
                    record["sid"],
                    "retired" in record,
                    record.get("succ"),
                )
            )
    finally:
        client.close()
    return sessions, tokens


def assert_linear_chains(
    sessions: list[StoredSession], tokens: list[StoredToken], chains: list[Chain]
) -> int:
    """Each stored session is one chain: one root, each retired token has one successor no
    other token has, one live token at the end, which is the session's current one. The
    tokens a client received are that chain, or all of it but the last (a lost answer).
    Returns how many sessions are in that last case: rotated, the answer lost in the kill."""
    by_session: dict[str, list[StoredToken]] = {}
    for token in tokens:
        by_session.setdefault(token.session_id, []).append(token)
    stored_chains: dict[str, list[str]] = {}
    for session in sessions:
        mine = {token.digest: token for token in by_session.get(session.id, [])}
        live = [token.digest for token in mine.values() if not token.retired]
        assert live == [session.current], f"session {session.id}: live tokens {live}"
        successors = [token.successor for token in mine.values() if token.retired]
        assert None not in successors, f"session {session.id}: retired without successor"
        assert len(set(successors)) == len(successors), f"session {session.id}: shared successor"
        assert set(successors) <= set(mine), f"session {session.id}: successor not recorded"
        roots = set(mine) - {str(successor) for successor in successors}
        assert len(roots) == 1, f"session {session.id}: {len(roots)} roots (branches)"
        walk = [roots.pop()]
        while mine[walk[-1]].retired:
            walk.append(str(mine[walk[-1]].successor))
            assert len(walk) <= len(mine), f"session {session.id}: a cycle"
        assert len(walk) == len(mine), f"session {session.id}: tokens off the chain"
        stored_chains[session.id] = walk
    in_doubt = 0
    for chain in chains:
        received = [digest(token) for token in chain.tokens]
        stored = stored_chains[chain.session_id]
        assert stored[: len(received)] == received, f"session {chain.session_id} diverged"
        assert len(stored) - len(received) in (0, 1), (
            f"session {chain.session_id}: {len(stored) - len(received)} rotations unknown to "
            "its client"
        )
        in_doubt += len(stored) - len(received)
    return in_doubt


# --- the client side --------------------------------------------------------------------------


async def rotate_until_killed(
    url: str, chains: list[Chain], kill_after: int, kill: asyncio.Event, rng: random.Random
) -> None:
    """Each session rotates in a loop, sometimes presenting its token twice at once (racing
    tabs). `kill` is set once `kill_after` rotations are done; the loops end when the
    process is gone."""
    total = 0
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:

        async def refresh(token: str) -> httpx.Response:
            return await client.post("/auth/refresh", json={"refresh_token": token})

        async def loop(chain: Chain) -> None:
            nonlocal total
            while True:
                presented = chain.current
                racing = 2 if rng.random() < 0.3 else 1
                try:
                    answers = await asyncio.gather(*(refresh(presented) for _ in range(racing)))
                except httpx.TransportError:
                    return
                for answer in answers:
                    if answer.status_code != 200:
                        chain.errors.append(f"{answer.status_code} {answer.text[:200]}")
                        return
                successors = {answer.json()["refresh_token"] for answer in answers}
                if len(successors) != 1:
                    chain.errors.append(f"one token, {len(successors)} successors")
                    return
                chain.tokens.append(successors.pop())
                chain.rotations += 1
                total += 1
                if total >= kill_after:
                    kill.set()

        await asyncio.gather(*(loop(chain) for chain in chains))


async def run_and_kill(auth: ServiceProcess, chains: list[Chain], rng: random.Random) -> None:
    kill = asyncio.Event()
    kill_after = rng.randint(1, 12 * len(chains))
    rotating = asyncio.create_task(rotate_until_killed(auth.url, chains, kill_after, kill, rng))
    await asyncio.wait(
        [rotating, asyncio.create_task(kill.wait())],
        timeout=60,
        return_when=asyncio.FIRST_COMPLETED,
    )
    assert kill.is_set(), f"no kill point reached: {[c.errors for c in chains]}"
    await asyncio.sleep(rng.uniform(0, 0.004))  # a random instant inside the requests in flight
    await asyncio.to_thread(auth.kill)
    await asyncio.wait_for(rotating, timeout=30)


def check_after_restart(url: str, chains: list[Chain]) -> None:
    """Through the API: the last known token gets exactly one successor (asked twice, the
    grace answer names the same one), which rotates; the last known token coming back after
    that is reuse and ends the session."""
    with httpx.Client(base_url=url, timeout=10) as client:

        def refresh(token: str) -> httpx.Response:
            return client.post("/auth/refresh", json={"refresh_token": token})

        for chain in chains:
            first = refresh(chain.current)
            assert first.status_code == 200, f"session {chain.session_id}: {first.text}"
            again = refresh(chain.current)
            assert again.status_code == 200, again.text
            successor = first.json()["refresh_token"]
            assert again.json()["refresh_token"] == successor, "two successors of one token"
            assert claims(first.json()["access_token"])["sid"] == chain.session_id
            after = refresh(successor)
            assert after.status_code == 200, after.text
            reused = refresh(chain.current)
            assert reused.status_code == 401
            assert reused.json()["code"] == "refresh_token_reused"
            ended = refresh(after.json()["refresh_token"])
            assert ended.status_code == 401
            assert ended.json()["code"] == "session_revoked"
            if len(chain.tokens) > 1:  # an older token: retired long ago, never a way back in
                older = refresh(chain.tokens[-2])
                assert older.status_code == 401


def sign_in(url: str, email: str) -> Chain:
    answer = httpx.post(
        f"{url}/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return Chain(str(claims(body["access_token"])["sid"]), [body["refresh_token"]])


@contextlib.contextmanager
def session_store(store: str, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if store == "sqlite":
        yield {}
        return
    with fresh_redis_prefix("crash") as space:
        assert isinstance(space, RedisSpace)
        yield {"AUTH_REDIS_URL": space.url, "AUTH_REDIS_PREFIX": space.prefix}


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_sigkill_during_rotation_leaves_every_session_rotated_or_not(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(f"{SEED}-{store}")
    print(f"seed {SEED} (set RESILIENCE_SEED to replay)")
    with session_store(store, request) as store_env:
        env = {
            "AUTH_KEY_ENCRYPTION_KEY": new_key_encryption_key(),
            # Long enough that the in-doubt rotation is still in grace after the restart.
            "AUTH_REFRESH_REUSE_GRACE": "300",
            **FAST_HASHING,
            **NO_LOCKOUT,
            **store_env,
        }

        def read_store() -> tuple[list[StoredSession], list[StoredToken]]:
            if store == "sqlite":
                return read_sqlite(tmp_path / ".data" / "auth.db")
            return read_redis(
                store_env["AUTH_REDIS_URL"], f"{store_env['AUTH_REDIS_PREFIX']}sessions:"
            )

        auth = start_service("auth_service", tmp_path, env, name="auth")
        try:
            email = new_email("crash")
            registered = httpx.post(
                f"{auth.url}/auth/register", json={"email": email, "password": PASSWORD}, timeout=10
            )
            assert registered.status_code == 201, registered.text
            rotations = in_doubt = 0
            for run in range(RUNS):
                chains = [sign_in(auth.url, email) for _ in range(SESSIONS_PER_RUN)]
                asyncio.run(run_and_kill(auth, chains, rng))
                errors = [error for chain in chains for error in chain.errors]
                assert not errors, f"run {run}: {errors}"
                rotations += sum(chain.rotations for chain in chains)
                sessions, tokens = read_store()
                in_doubt += assert_linear_chains(sessions, tokens, chains)
                auth = ServiceProcess(
                    "auth_service", env=env, workdir=tmp_path, port=auth.port, name="auth"
                ).start()
                check_after_restart(auth.url, chains)
                assert_linear_chains(*read_store(), [])
            print(f"{store}: {RUNS} kills, {rotations} rotations, {in_doubt} lost answers")
        finally:
            auth.stop()
