"""The refresh-session store contract, run against both implementations (SQL on SQLite and
PostgreSQL, and Redis). Time is passed in, so expiry is tested without waiting."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis
from sqlalchemy import select

from auth_service.__main__ import MIGRATIONS
from auth_service.sessions.models import RefreshSession, RefreshToken
from auth_service.sessions.redis_store import RedisRefreshSessionStore
from auth_service.sessions.sql_store import SqlRefreshSessionStore
from auth_service.sessions.store import (
    EXPIRED,
    INVALID,
    REUSED,
    REVOKED,
    Lifetimes,
    RefreshError,
    RefreshSessionStore,
)
from auth_service.sessions.tokens import digest
from kit import database
from tests.infra import RedisSpace

LIFETIMES = Lifetimes(refresh_ttl=100, session_max_age=1000, reuse_grace=10)
T0 = 1_800_000_000.0


class StoreUnderTest:
    def __init__(self, store: RefreshSessionStore, kind: str) -> None:
        self.store = store
        self.kind = kind


@pytest.fixture(params=["sqlite", "postgres", "redis"])
async def subject(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreUnderTest]:
    kind = str(request.param)
    if kind == "redis":
        space: RedisSpace = request.getfixturevalue("redis_space")
        prefix = f"{space.prefix}store-{secrets.token_hex(4)}:"
        store: RefreshSessionStore = RedisRefreshSessionStore(
            space.url, prefix=prefix, lifetimes=LIFETIMES
        )
        yield StoreUnderTest(store, kind)
        await store.close()
        return
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}"
        if kind == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    database.upgrade(url, MIGRATIONS)
    engine = database.create_engine(url)
    sql_store = SqlRefreshSessionStore(database.session_factory(engine), LIFETIMES)
    subject = StoreUnderTest(sql_store, kind)
    subject.engine = engine  # type: ignore[attr-defined]
    yield subject
    await engine.dispose()


def _user() -> str:
    return f"user-{secrets.token_hex(6)}"


async def _refused(store: RefreshSessionStore, token: str, now: float) -> str:
    with pytest.raises(RefreshError) as caught:
        await store.rotate(token, now=now)
    return caught.value.code


async def test_rotation_retires_the_presented_token(subject: StoreUnderTest) -> None:
    store = subject.store
    first = await store.create(user_id=_user(), user_agent="ua", ip="127.0.0.1", now=T0)
    second = await store.rotate(first.refresh_token, now=T0 + 1)
    assert second.refresh_token != first.refresh_token
    assert second.session.id == first.session.id
    assert second.expires_at == pytest.approx(T0 + 1 + LIFETIMES.refresh_ttl)
    third = await store.rotate(second.refresh_token, now=T0 + 2)
    assert third.session.last_used_at == pytest.approx(T0 + 2)
    # The first token, long after the grace window: theft. The whole session ends.
    assert await _refused(store, first.refresh_token, T0 + 50) == REUSED
    assert await _refused(store, third.refresh_token, T0 + 51) == REVOKED


async def test_grace_window_returns_the_same_successor(subject: StoreUnderTest) -> None:
    store = subject.store
    first = await store.create(user_id=_user(), user_agent="", ip="", now=T0)
    second = await store.rotate(first.refresh_token, now=T0 + 1)
    again = await store.rotate(first.refresh_token, now=T0 + 1 + LIFETIMES.reuse_grace)
    assert again.refresh_token == second.refresh_token
    # The session was not branched or revoked: the successor still rotates.
    third = await store.rotate(second.refresh_token, now=T0 + 12)
    assert third.refresh_token not in {first.refresh_token, second.refresh_token}


async def test_grace_covers_only_the_latest_rotation(subject: StoreUnderTest) -> None:
    store = subject.store
    first = await store.create(user_id=_user(), user_agent="", ip="", now=T0)
    second = await store.rotate(first.refresh_token, now=T0 + 1)
    await store.rotate(second.refresh_token, now=T0 + 2)
    # `first` was rotated 2 s ago, but its successor is no longer current: reuse.
    assert await _refused(store, first.refresh_token, T0 + 3) == REUSED


async def test_grace_after_the_window_is_reuse(subject: StoreUnderTest) -> None:
    store = subject.store
    first = await store.create(user_id=_user(), user_agent="", ip="", now=T0)
    second = await store.rotate(first.refresh_token, now=T0 + 1)
    late = T0 + 1 + LIFETIMES.reuse_grace + 0.5
    assert await _refused(store, first.refresh_token, late) == REUSED
    assert await _refused(store, second.refresh_token, late + 1) == REVOKED


async def store_contents(subject: StoreUnderTest) -> dict[str, object]:
    """Everything the store holds, by key (Redis key, or table and primary key)."""
    store = subject.store
    if isinstance(store, RedisRefreshSessionStore):
        contents: dict[str, object] = {}
        async for key in store._redis.scan_iter(match=f"{store._prefix}*"):
            kind = await store._redis.type(key)
            if kind == "hash":
                contents[key] = await store._redis.hgetall(key)
            else:
                contents[key] = sorted(await store._redis.smembers(key))
        return contents
    engine = subject.engine  # type: ignore[attr-defined]
    async with engine.connect() as connection:
        tokens = (await connection.execute(select(RefreshToken.__table__))).all()
        sessions = (await connection.execute(select(RefreshSession.__table__))).all()
    return {
        **{f"token:{row.digest}": tuple(row) for row in tokens},
        **{f"session:{row.id}": tuple(row) for row in sessions},
    }


async def test_a_hundred_concurrent_refreshes_never_branch(subject: StoreUnderTest) -> None:
    store = subject.store
    bystander = await store.create(user_id=_user(), user_agent="other", ip="", now=T0)
    first = await store.create(user_id=_user(), user_agent="", ip="", now=T0)
    before = await store_contents(subject)
    results = await asyncio.gather(
        *(store.rotate(first.refresh_token, now=T0 + 1) for _ in range(100)),
        return_exceptions=True,
    )
    failures = [result for result in results if isinstance(result, BaseException)]
    assert failures == []
    successors = {
        result.refresh_token for result in results if not isinstance(result, BaseException)
    }
    assert len(successors) == 1
    (successor,) = successors
    after = await store_contents(subject)
    # Exactly one token was added; only the rotated token and its session changed.
    added = set(after) - set(before)
    changed = {key for key in set(before) & set(after) if before[key] != after[key]}
    assert set(before) - set(after) == set()
    assert len(added) == 1 and digest(successor) in next(iter(added))
    assert {key.rsplit(":", 1)[-1] for key in changed} == {
        digest(first.refresh_token),
        first.session.id,
    }
    # The one successor is live; the bystander session is untouched and still rotates.
    assert (await store.rotate(successor, now=T0 + 2)).session.id == first.session.id
    assert (await store.rotate(bystander.refresh_token, now=T0 + 3)).session.user_agent == "other"


async def test_reuse_ends_only_that_session(subject: StoreUnderTest) -> None:
    store = subject.store
    user = _user()
    stolen = await store.create(user_id=user, user_agent="laptop", ip="", now=T0)
    other = await store.create(user_id=user, user_agent="phone", ip="", now=T0)
    await store.rotate(stolen.refresh_token, now=T0 + 1)
    assert await _refused(store, stolen.refresh_token, T0 + 20) == REUSED  # outside the grace
    listed = await store.list_sessions(user_id=user, now=T0 + 21)
    assert [info.id for info in listed] == [other.session.id]
    assert (await store.rotate(other.refresh_token, now=T0 + 22)).session.id == other.session.id


async def test_idle_expiry_and_maximum_age(subject: StoreUnderTest) -> None:
    store = subject.store
    idle = await store.create(user_id=_user(), user_agent="", ip="", now=T0)
    assert await _refused(store, idle.refresh_token, T0 + LIFETIMES.refresh_ttl + 1) == EXPIRED

    chain = await store.create(user_id=_user(), user_agent="", ip="", now=T0)
    now = T0
    while now + 90 < T0 + LIFETIMES.session_max_age:
        now += 90
        chain = await store.rotate(chain.refresh_token, now=now)
        assert chain.expires_at <= T0 + LIFETIMES.session_max_age
    assert await _refused(store, chain.refresh_token, T0 + LIFETIMES.session_max_age) == EXPIRED


async def test_unknown_token_is_invalid(subject: StoreUnderTest) -> None:
    assert await _refused(subject.store, secrets.token_urlsafe(32), T0) == INVALID
    assert await _refused(subject.store, "", T0) == INVALID


async def test_logout_by_any_token_of_the_session(subject: StoreUnderTest) -> None:
    store = subject.store
    user = _user()
    first = await store.create(user_id=user, user_agent="", ip="", now=T0)
    second = await store.rotate(first.refresh_token, now=T0 + 1)
    ended = await store.revoke_by_token(first.refresh_token, now=T0 + 2)
    assert ended == (first.session.id, user)  # what the revocation list is told
    assert await _refused(store, second.refresh_token, T0 + 3) == REVOKED
    assert await store.revoke_by_token(first.refresh_token, now=T0 + 4) is None  # idempotent
    assert await store.revoke_by_token(secrets.token_urlsafe(32), now=T0 + 4) is None


async def test_sessions_of_a_user(subject: StoreUnderTest) -> None:
    store = subject.store
    owner, other = _user(), _user()
    a = await store.create(user_id=owner, user_agent="phone", ip="10.0.0.1", now=T0)
    b = await store.create(user_id=owner, user_agent="laptop", ip="10.0.0.2", now=T0 + 1)
    c = await store.create(user_id=owner, user_agent="tablet", ip="10.0.0.3", now=T0 + 2)
    foreign = await store.create(user_id=other, user_agent="x", ip="10.0.0.9", now=T0)

    listed = await store.list_sessions(user_id=owner, now=T0 + 3)
    assert [info.id for info in listed] == [c.session.id, b.session.id, a.session.id]
    assert listed[0].user_agent == "tablet" and listed[0].ip == "10.0.0.3"

    assert not await store.revoke_session(user_id=owner, session_id=foreign.session.id, now=T0 + 4)
    assert await store.revoke_session(user_id=owner, session_id=a.session.id, now=T0 + 4)
    assert not await store.revoke_session(user_id=owner, session_id=a.session.id, now=T0 + 5)
    assert await _refused(store, a.refresh_token, T0 + 5) == REVOKED

    ended = await store.revoke_all(user_id=owner, now=T0 + 6, except_session_id=b.session.id)
    assert ended == [c.session.id]
    assert [info.id for info in await store.list_sessions(user_id=owner, now=T0 + 7)] == [
        b.session.id
    ]
    assert await store.revoke_all(user_id=owner, now=T0 + 8) == [b.session.id]
    assert await store.revoke_all(user_id=owner, now=T0 + 8) == []
    assert await store.list_sessions(user_id=owner, now=T0 + 9) == []
    assert await _refused(store, b.refresh_token, T0 + 9) == REVOKED
    # The other user's session was never touched.
    assert (await store.rotate(foreign.refresh_token, now=T0 + 10)).session.user_id == other
    # Expired sessions are not listed.
    assert await store.list_sessions(user_id=other, now=T0 + 10 + LIFETIMES.refresh_ttl + 1) == []


async def test_store_keeps_no_usable_token(subject: StoreUnderTest) -> None:
    store = subject.store
    first = await store.create(user_id=_user(), user_agent="", ip="", now=T0)
    second = await store.rotate(first.refresh_token, now=T0 + 1)
    tokens = {first.refresh_token, second.refresh_token}
    if subject.kind == "redis":
        assert isinstance(store, RedisRefreshSessionStore)
        client: redis.Redis = store._redis
        dump = []
        async for key in client.scan_iter(match=f"{store._prefix}*"):
            dump.append(str(key))
            kind = await client.type(key)
            if kind == "hash":
                dump.extend(str(v) for v in (await client.hgetall(key)).values())
            ttl = await client.ttl(key)
            assert 0 < ttl <= LIFETIMES.session_max_age + T0, key  # every key expires
    else:
        engine = subject.engine  # type: ignore[attr-defined]
        async with engine.connect() as connection:
            rows = (await connection.execute(select(RefreshToken.__table__))).all()
            rows += (await connection.execute(select(RefreshSession.__table__))).all()
        dump = [str(value) for row in rows for value in row]
    text = " ".join(dump)
    assert all(token not in text for token in tokens)


async def test_purge_removes_ended_sessions(subject: StoreUnderTest) -> None:
    store = subject.store
    old = await store.create(user_id=_user(), user_agent="", ip="", now=T0)
    if isinstance(store, RedisRefreshSessionStore):
        # Redis forgets a session by itself: every key of it expires when the session ends.
        session_key = f"{store._prefix}s:{old.session.id}"
        expected = int(T0 + LIFETIMES.session_max_age)
        assert await store._redis.expiretime(session_key) in (expected, expected + 1)
        assert await store.purge_expired(now=T0 + LIFETIMES.session_max_age) == 0
        return
    fresh = await store.create(user_id=_user(), user_agent="", ip="", now=T0 + 500)
    assert await store.purge_expired(now=T0 + LIFETIMES.refresh_ttl + 1) >= 1
    assert await _refused(store, old.refresh_token, T0 + 120) == INVALID
    assert (await store.rotate(fresh.refresh_token, now=T0 + 501)).session.id == fresh.session.id


async def test_looking_a_session_up_changes_nothing(subject: StoreUnderTest) -> None:
    """Introspection's view: the live session by id, and by its current refresh token only."""
    store = subject.store
    user = _user()
    first = await store.create(user_id=user, user_agent="ua", ip="127.0.0.1", now=T0)
    sid = first.session.id
    found = await store.session(sid, now=T0 + 1)
    assert found is not None and found.user_id == user
    by_token = await store.session_of(first.refresh_token, now=T0 + 1)
    assert by_token is not None and by_token.id == sid
    # Looking did not rotate or retire anything.
    second = await store.rotate(first.refresh_token, now=T0 + 2)
    assert await store.session_of(first.refresh_token, now=T0 + 3) is None  # retired
    assert (await store.session_of(second.refresh_token, now=T0 + 3)) is not None
    assert await store.session_of(second.refresh_token, now=T0 + 2 + 101) is None  # idle expiry
    assert await store.session_of("unknown", now=T0 + 3) is None
    assert await store.session("no-such-session", now=T0 + 3) is None
    await store.revoke_by_token(second.refresh_token, now=T0 + 4)
    assert await store.session(sid, now=T0 + 5) is None
    assert await store.session_of(second.refresh_token, now=T0 + 5) is None
