"""Argon2id off the event loop and out of its process, behind a bounded queue.

Each hash holds `memory_cost` KiB while it runs, so concurrency is capped at the worker count
and waiting is capped at the queue size: beyond that the answer is 503 `overloaded` at once,
never unbounded memory or latency.

The workers are processes, not threads: a thread that finished a hash had to win the GIL back
from the event loop before it could hand the result over and start the next one, and its core
sat idle meanwhile (7–9 % of the machine at saturation, measured; README, Performance). Processes
come from a forkserver (never a fork of the threaded service) with this module preloaded. A
worker that dies breaks the pool: the requests it held get 503 `overloaded` and a new pool
takes the next ones.

The Argon2id work itself runs in libsodium (PyNaCl) when it can take the parameters (p=1, the
default): the same algorithm, parameters and PHC string as argon2-cffi's, for about half of
its user CPU (plus the page faults of the memory libsodium maps for each hash; README,
Performance), so a login costs the server less and an attacker no less. argon2-cffi stays the
judge of a stored hash's parameters (rehash on login), and does the hashing when libsodium
cannot (p > 1) and any verify of a non-argon2id string.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import nacl.exceptions
import nacl.pwhash.argon2id as sodium_argon2id
import structlog
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from prometheus_client import Gauge, Histogram

from auth_service.passwords.policy import check_password
from kit.problems import ProblemError

HASH_SECONDS = Histogram(
    "auth_password_hash_seconds",
    "Time of one Argon2id hash or verify in its worker process",
    ["operation"],
    buckets=(0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1),
)
HASH_QUEUE_DEPTH = Gauge("auth_password_hash_queue_depth", "Hash jobs running or waiting")
SODIUM_PREFIX = "$argon2id$"
log = structlog.get_logger("auth")

_FORKSERVER = multiprocessing.get_context("forkserver")
_FORKSERVER.set_forkserver_preload([__name__])


class Argon2:
    """The computation alone, the same in the service and in each worker process."""

    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self.parameters = (memory_kib, time_cost, parallelism)
        self.hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        # libsodium's hashes are argon2-cffi's with these settings: 16-byte salt, 32-byte hash.
        self._sodium_limits = (time_cost, memory_kib * 1024) if parallelism == 1 else None

    def hash(self, password: str) -> str:
        if self._sodium_limits is None:
            return self.hasher.hash(password)
        opslimit, memlimit = self._sodium_limits
        hashed = sodium_argon2id.str(password.encode(), opslimit=opslimit, memlimit=memlimit)
        return hashed.decode("ascii")

    def verify(self, stored_hash: str, password: str) -> bool:
        """True on a match, False on a mismatch or a stored string that is not a hash."""
        if stored_hash.startswith(SODIUM_PREFIX):
            try:
                return sodium_argon2id.verify(stored_hash.encode(), password.encode())
            except nacl.exceptions.CryptoError:  # a mismatch, or a malformed stored string
                return False
        try:
            return self.hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def judged_hash(self, field: str, password: str, context: tuple[str, ...]) -> str:
        return self.hash(check_password(field, password, context=context))


_worker: Argon2 | None = None


def _start_worker(memory_kib: int, time_cost: int, parallelism: int) -> None:
    global _worker
    _worker = Argon2(memory_kib=memory_kib, time_cost=time_cost, parallelism=parallelism)


def _job(operation: str, *args: Any) -> tuple[Any, float]:
    """One job in a worker process: its result and the seconds it took."""
    if _worker is None:
        raise RuntimeError("the worker was not started with its parameters")
    started = time.perf_counter()
    if operation == "verify":
        result: Any = _worker.verify(*args)
    elif operation == "hash":
        result = _worker.hash(*args)
    elif operation == "judged_hash":
        result = _worker.judged_hash(*args)
    elif operation == "ping":
        result = None  # nothing: it starts a worker, or shows that one answers
    else:
        raise ValueError(f"unknown hashing job {operation!r}")
    return result, time.perf_counter() - started


class PasswordHashing:
    def __init__(
        self,
        *,
        memory_kib: int,
        time_cost: int,
        parallelism: int,
        workers: int,
        queue: int,
    ) -> None:
        self._argon2 = Argon2(memory_kib=memory_kib, time_cost=time_cost, parallelism=parallelism)
        self._workers = workers
        self._pool = self._new_pool()
        self._capacity = workers + queue
        self._in_flight = 0
        # Verifying against this costs exactly what a real verify costs: the unknown-email path.
        self._dummy_hash = self.hash_sync("dummy password for timing equality")

    def _new_pool(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=_FORKSERVER,
            initializer=_start_worker,
            initargs=self._argon2.parameters,
        )
        # Every worker starts now, unawaited: the pool would otherwise start them one by one on
        # later submits, each a handshake with the forkserver on the event loop mid-request.
        for _ in range(self._workers):
            pool.submit(_job, "ping")
        return pool

    async def hash(self, password: str) -> str:
        return str(await self._run("hash", password))

    async def hash_new(self, field: str, password: str, *, context: tuple[str, ...]) -> str:
        """Judge a new password by the policy, then hash it: one job in the pool, because the
        guessability check (zxcvbn) alone takes up to tens of ms on a long password and must
        not run on the event loop either. A refused password raises the policy's 422."""
        return str(await self._run("judged_hash", field, password, context))

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when `password` matches; with no stored hash, burns one verify and says False."""
        target = stored_hash if stored_hash is not None else self._dummy_hash
        matched = await self._run("verify", target, password)
        return bool(matched) and stored_hash is not None

    async def ping(self) -> None:
        """Readiness: a worker answers a job that does nothing, or the pool is replaced and
        this raises. With every worker busy the pool is plainly working, and the probe does
        not wait behind the hashes queued for them."""
        if self._in_flight < self._workers:
            await self._run("ping")

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._argon2.hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def hash_sync(self, password: str) -> str:
        """One hash in the calling thread (start-up, or a benchmark's)."""
        return self._argon2.hash(password)

    def verify_sync(self, stored_hash: str, password: str) -> bool:
        """One verify in the calling thread: True on a match, False on a mismatch or a stored
        string that is not a hash."""
        return self._argon2.verify(stored_hash, password)

    async def _run(self, operation: str, *args: Any) -> Any:
        if self._in_flight >= self._capacity:
            raise ProblemError(
                503,
                "overloaded",
                "too many password operations in progress, retry shortly",
                headers={"Retry-After": "1"},
            )
        self._in_flight += 1
        HASH_QUEUE_DEPTH.set(self._in_flight)
        pool = self._pool
        try:
            loop = asyncio.get_running_loop()
            result, seconds = await loop.run_in_executor(pool, _job, operation, *args)
        except BrokenProcessPool:
            if pool is self._pool:  # the first to hear of it replaces the pool
                log.error("password_hashing_worker_died")
                self._pool = self._new_pool()
                pool.shutdown(wait=False)  # a broken pool has failed its jobs already
            raise ProblemError(
                503,
                "overloaded",
                "password hashing is restarting, retry shortly",
                headers={"Retry-After": "1"},
            ) from None
        finally:
            self._in_flight -= 1
            HASH_QUEUE_DEPTH.set(self._in_flight)
        if operation != "ping":
            HASH_SECONDS.labels(operation).observe(seconds)
        return result
