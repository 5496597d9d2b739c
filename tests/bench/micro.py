"""In-process figures: TokenVerifier against bare joserfc, the OpenSSL floor, one Argon2 verify.

All timed in process CPU time (as `openssl speed` times in user CPU time), so that other work on
a shared machine, which stretches wall time, does not move the figures much.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import threading
import time
import timeit
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher, extract_parameters
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

from auth_service.config import Settings
from auth_service.passwords.hashing import PasswordHashing
from token_verifier import TokenVerifier
from token_verifier.keys import StaticKeys

ISSUER = "http://bench.invalid"
AUDIENCE = "todo-api"


def run_now(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Drive a coroutine that never suspends (StaticKeys.key_for does not) without an event
    loop, so the loop's own cost is not in the figure."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("coroutine suspended; cannot time it without a loop")


@dataclass(frozen=True)
class SignedSet:
    alg: str
    keys: StaticKeys
    key: Any  # the public key as joserfc imports it from the JWKS
    tokens: list[str]


def _generate(alg: str) -> Any:
    if alg == "ES256":
        return ECKey.generate_key("P-256")
    if alg == "Ed25519":
        return OKPKey.generate_key("Ed25519")
    return RSAKey.generate_key(2048)


def signed_set(alg: str, count: int) -> SignedSet:
    """`count` distinct access tokens (different jti) signed by a fresh key."""
    private = _generate(alg)
    kid = f"bench-{alg.lower()}"
    public = {**private.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
    keys = StaticKeys({"keys": [public]})
    now = int(time.time())
    tokens = []
    for _ in range(count):
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(uuid.uuid4()),
            "sid": uuid.uuid4().hex,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + 3600,
        }
        header = {"alg": alg, "typ": "at+jwt", "kid": kid}
        payload = json.dumps(claims, separators=(",", ":")).encode()
        tokens.append(jws.serialize_compact(header, payload, private, algorithms=[alg]))
    key = run_now(keys.key_for(kid))
    assert key is not None
    return SignedSet(alg=alg, keys=keys, key=key.key, tokens=tokens)


def _best_per_call(func: Callable[[], object], calls_per_run: int, repeat: int) -> float:
    """Seconds per call: the best of `repeat` runs (the least disturbed by other processes)."""
    return (
        min(timeit.repeat(func, number=1, repeat=repeat, timer=time.process_time)) / calls_per_run
    )


def cache_hit_s(repeat: int = 7, number: int = 50_000) -> float:
    tokens = signed_set("ES256", 1)
    verifier = TokenVerifier(tokens.keys, issuer=ISSUER, audience=AUDIENCE)
    token = tokens.tokens[0]
    run_now(verifier.verify(token))  # now cached

    def many() -> None:
        for _ in range(number):
            run_now(verifier.verify(token))

    return _best_per_call(many, number, repeat)


@dataclass(frozen=True)
class FirstVerify:
    alg: str
    ours_s: float  # TokenVerifier.verify of a token it has not seen (key cached)
    joserfc_s: float  # bare jws.deserialize_compact of the same tokens

    @property
    def ratio(self) -> float:
        return self.ours_s / self.joserfc_s


def first_verification(alg: str, count: int, repeat: int = 5) -> FirstVerify:
    """Every token verified once per repeat by a fresh TokenVerifier: each call is a miss."""
    signed = signed_set(alg, count)

    def ours() -> None:
        verifier = TokenVerifier(signed.keys, issuer=ISSUER, audience=AUDIENCE)
        for token in signed.tokens:
            run_now(verifier.verify(token))

    def bare() -> None:
        for token in signed.tokens:
            jws.deserialize_compact(token, signed.key, algorithms=[alg])

    ours()  # warm up (imports, OpenSSL contexts)
    bare()
    ours_times, bare_times = [], []
    for _ in range(repeat):  # interleaved, so drift in machine load hits both alike
        ours_times.append(timeit.timeit(ours, number=1, timer=time.process_time) / count)
        bare_times.append(timeit.timeit(bare, number=1, timer=time.process_time) / count)
    return FirstVerify(alg, min(ours_times), min(bare_times))


def openssl_ecdsap256_verify_s(seconds: int = 2) -> float:
    """One P-256 ECDSA verify according to `openssl speed` (the floor under any Python)."""
    binary = shutil.which("openssl")
    if binary is None:
        raise RuntimeError("openssl not on PATH")
    result = subprocess.run(
        [binary, "speed", "-seconds", str(seconds), "ecdsap256"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    for line in result.stdout.splitlines():
        if "nistp256" in line:
            numbers = re.findall(r"[\d.]+", line.split(")", 1)[1])
            verifies_per_s = float(numbers[-1])
            return 1 / verifies_per_s
    raise RuntimeError(f"no nistp256 line in openssl speed output: {result.stdout[-300:]}")


def _verifier(library: str = "service") -> Callable[[], object]:
    """One Argon2id verify at the service's default parameters (m=19456 t=2 p=1), as the
    service runs it (`PasswordHashing.verify_sync`: libsodium), or as bare argon2-cffi does
    with the parameters read back from the service's own hash."""
    defaults = Settings()
    password = "correct horse battery staple"
    hashing = PasswordHashing(
        memory_kib=defaults.argon2_memory_kib,
        time_cost=defaults.argon2_time_cost,
        parallelism=defaults.argon2_parallelism,
        workers=1,
        queue=0,
    )
    stored = hashing.hash_sync(password)
    hashing.close()
    if library == "argon2-cffi":
        hasher = PasswordHasher.from_parameters(extract_parameters(stored))
        return lambda: hasher.verify(stored, password)
    return lambda: hashing.verify_sync(stored, password)


def argon2_verify_s(samples: int = 15, library: str = "service") -> float:
    """Median CPU time of one Argon2id verify at the service's parameters (p=1: one thread)."""
    verify = _verifier(library)
    verify()
    times = []
    for _ in range(samples):
        started = time.process_time()
        verify()
        times.append(time.process_time() - started)
    return statistics.median(times)


@dataclass(frozen=True)
class Contention:
    alone_s: float  # median CPU time of one verify with nothing else hashing
    together_s: float  # median CPU time of one verify while `threads` verify at once

    @property
    def ceiling(self) -> float:
        """The share of "cores ÷ one verify alone" that concurrent hashing leaves."""
        return self.alone_s / self.together_s


def argon2_contention(threads: int, rounds: int = 3, each: int = 8) -> Contention:
    """One verify alone against one among `threads` at once (as the service's pool runs
    them: the hashes share caches and memory bandwidth), interleaved round by round so the
    machine's drift hits both alike."""
    verify = _verifier()
    verify()
    alone: list[float] = []
    together: list[float] = []

    def timed(into: list[float]) -> None:
        for _ in range(each):
            began = time.thread_time()
            verify()
            into.append(time.thread_time() - began)

    def work(start: threading.Barrier) -> None:
        start.wait()
        timed(together)

    for _ in range(rounds):
        timed(alone)
        barrier = threading.Barrier(threads)
        workers = [threading.Thread(target=work, args=(barrier,)) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    return Contention(statistics.median(alone), statistics.median(together))
