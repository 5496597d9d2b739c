"""The hashing itself: libsodium's Argon2id and argon2-cffi's are one format, each verifies the
other's hashes, and a stored string that is not a hash is a mismatch, never an exception; the
worker processes hand back results and refusals, and a dead one costs a 503, not the pool."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import nacl.pwhash.argon2id as sodium_argon2id
import pytest
from argon2 import PasswordHasher, Type

from auth_service.passwords.hashing import PasswordHashing
from kit.problems import FieldError, ProblemError

# Cheap parameters: the format and the code paths are the same as at OWASP's.
MEMORY_KIB, TIME_COST = 64, 1
PASSWORD = "correct horse battery staple ✓"


def cffi_hasher(*, parallelism: int = 1, kind: Type = Type.ID) -> PasswordHasher:
    return PasswordHasher(
        time_cost=TIME_COST,
        memory_cost=MEMORY_KIB,
        parallelism=parallelism,
        hash_len=32,
        salt_len=16,
        type=kind,
    )


@pytest.fixture
def hashing() -> Iterator[PasswordHashing]:
    made = PasswordHashing(
        memory_kib=MEMORY_KIB, time_cost=TIME_COST, parallelism=1, workers=1, queue=0
    )
    yield made
    made.close()


def test_a_new_hash_is_argon2id_at_the_configured_parameters(hashing: PasswordHashing) -> None:
    stored = hashing.hash_sync(PASSWORD)
    assert stored.startswith(f"$argon2id$v=19$m={MEMORY_KIB},t={TIME_COST},p=1$")
    assert not hashing.needs_rehash(stored)
    assert cffi_hasher().verify(stored, PASSWORD)  # argon2-cffi reads what libsodium wrote
    assert hashing.hash_sync(PASSWORD) != stored  # a fresh salt each time


def test_hashes_argon2_cffi_wrote_still_verify(hashing: PasswordHashing) -> None:
    """Hashes stored before libsodium did the work, including ones at other parameters and of
    the other Argon2 types, verify; the wrong password does not."""
    for stored in (
        cffi_hasher().hash(PASSWORD),
        cffi_hasher(parallelism=2).hash(PASSWORD),
        cffi_hasher(kind=Type.I).hash(PASSWORD),
    ):
        assert hashing.verify_sync(stored, PASSWORD), stored
        assert not hashing.verify_sync(stored, PASSWORD + "x"), stored
        assert not hashing.verify_sync(stored, ""), stored


def test_parameters_libsodium_cannot_take_are_hashed_by_argon2_cffi() -> None:
    hashing = PasswordHashing(
        memory_kib=MEMORY_KIB, time_cost=TIME_COST, parallelism=2, workers=1, queue=0
    )
    try:
        stored = hashing.hash_sync(PASSWORD)
        assert stored.startswith(f"$argon2id$v=19$m={MEMORY_KIB},t={TIME_COST},p=2$")
        assert hashing.verify_sync(stored, PASSWORD)
        assert not hashing.verify_sync(stored, "wrong")
    finally:
        hashing.close()


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "$argon2id$",
        "$argon2id$v=19$m=64,t=1,p=1$",
        "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$!!!!",
        "$argon2id$v=19$m=0,t=0,p=0$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA",
        "$argon2id$v=19$m=64,t=1,p=1$é$é",
        "$argon2i$v=19$m=64,t=1,p=1$garbage",
        "$2b$12$abcdefghijklmnopqrstuv",
    ],
)
def test_a_stored_string_that_is_not_a_hash_is_a_mismatch(
    hashing: PasswordHashing, stored: str
) -> None:
    assert hashing.verify_sync(stored, PASSWORD) is False


async def test_an_unknown_account_costs_a_verify_and_says_false(hashing: PasswordHashing) -> None:
    assert await hashing.verify(None, "dummy password for timing equality") is False
    stored = await hashing.hash(PASSWORD)
    assert await hashing.verify(stored, PASSWORD) is True


def test_libsodium_does_the_work_at_p1(
    hashing: PasswordHashing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The speed-up is real only if libsodium runs: a spy on its two calls sees both."""
    calls: list[str] = []
    real_str, real_verify = sodium_argon2id.str, sodium_argon2id.verify

    def spy_str(password: bytes, *, opslimit: int, memlimit: int) -> bytes:
        calls.append(f"str {opslimit} {memlimit}")
        return real_str(password, opslimit=opslimit, memlimit=memlimit)

    def spy_verify(stored: bytes, password: bytes) -> bool:
        calls.append("verify")
        return real_verify(stored, password)

    monkeypatch.setattr(sodium_argon2id, "str", spy_str)
    monkeypatch.setattr(sodium_argon2id, "verify", spy_verify)
    assert hashing.verify_sync(hashing.hash_sync(PASSWORD), PASSWORD)
    assert calls == [f"str {TIME_COST} {MEMORY_KIB * 1024}", "verify"]


async def test_a_refused_password_comes_back_from_the_worker_as_the_same_422(
    hashing: PasswordHashing,
) -> None:
    with pytest.raises(FieldError) as refused:
        await hashing.hash_new("password", "password", context=())
    assert (refused.value.status, refused.value.code) == (422, "weak_password")
    assert refused.value.extra == {
        "errors": [{"field": "password", "message": "is too common or too easy to guess"}]
    }


async def test_a_worker_that_dies_costs_a_503_then_a_new_pool_answers(
    hashing: PasswordHashing,
) -> None:
    stored = await hashing.hash(PASSWORD)
    assert await hashing.verify(stored, PASSWORD) is True
    # The pool's worker processes (stdlib-private, read only to find them).
    workers = list(hashing._pool._processes)
    assert workers and os.getpid() not in workers
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    with pytest.raises(ProblemError) as failed:
        await hashing.verify(stored, PASSWORD)
    assert (failed.value.status, failed.value.code) == (503, "overloaded")
    assert failed.value.headers == {"Retry-After": "1"}
    assert await hashing.verify(stored, PASSWORD) is True
    assert await hashing.verify(stored, "wrong password") is False
    assert not set(hashing._pool._processes) & set(workers)


def test_every_worker_starts_with_the_pool_not_on_a_later_request() -> None:
    """Started lazily, each worker would be a handshake with the forkserver on the event loop
    in the middle of a login."""
    made = PasswordHashing(
        memory_kib=MEMORY_KIB, time_cost=TIME_COST, parallelism=1, workers=2, queue=0
    )
    try:
        deadline = time.monotonic() + 30
        while len(made._pool._processes) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # polling a condition, with a deadline
        assert len(made._pool._processes) == 2
    finally:
        made.close()


async def test_ping_is_answered_by_a_worker_and_fails_once_when_the_pool_died(
    hashing: PasswordHashing,
) -> None:
    await hashing.ping()
    for pid in list(hashing._pool._processes):  # stdlib-private, read only to find them
        os.kill(pid, signal.SIGKILL)
    with pytest.raises(ProblemError) as failed:
        await hashing.ping()
    assert (failed.value.status, failed.value.code) == (503, "overloaded")
    await hashing.ping()  # the new pool answers


async def test_ping_does_not_wait_behind_busy_workers() -> None:
    slow = PasswordHashing(memory_kib=65536, time_cost=4, parallelism=1, workers=1, queue=1)
    try:
        await slow.ping()  # the worker is up
        hashing = asyncio.ensure_future(slow.hash(PASSWORD))
        await asyncio.sleep(0)  # let the hash be submitted (a yield, not a wait for time)
        await slow.ping()
        assert not hashing.done()  # the probe came back while the hash still ran
        assert (await hashing).startswith("$argon2id$v=19$m=65536,t=4,p=1$")
    finally:
        slow.close()
