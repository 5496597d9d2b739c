"""Helpers shared by the fault-injection tests: clients, answers on record, token claims."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

PASSWORD = "correct horse battery staple"

# Argon2id at a test cost where hashing is not what a test is about (the service reads these).
FAST_HASHING = {"AUTH_ARGON2_MEMORY_KIB": "1024", "AUTH_ARGON2_TIME_COST": "1"}
# The gateway's per-address limit on auth routes would otherwise throttle a load generator.
NO_GATEWAY_LIMIT = {"GATEWAY_AUTH_RATE_LIMIT": "1000000/minute"}
NO_LOCKOUT = {"AUTH_LOGIN_FAILURE_LIMIT": "1000000/minute"}


def new_email(label: str) -> str:
    return f"{label}-{secrets.token_hex(6)}@example.com"


def claims(token: str) -> dict[str, Any]:
    """The payload of a JWS, unverified (the services verify; tests only read `sid`, `sub`)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Account:
    email: str
    user_id: str
    access_token: str
    refresh_token: str


def register(client: httpx.Client, label: str) -> Account:
    email = new_email(label)
    answer = client.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return Account(email, body["user"]["id"], body["access_token"], body["refresh_token"])


@dataclass(frozen=True)
class Answer:
    """One request's outcome, as the client saw it."""

    kind: str
    status: int  # 0: no HTTP answer (connection refused, reset, timeout)
    code: str | None = None
    retry_after: str | None = None
    detail: Any = None
    at: float = field(default_factory=time.monotonic)


def answer_of(kind: str, response: httpx.Response, detail: Any = None) -> Answer:
    code = None
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        code = response.json().get("code")
    return Answer(kind, response.status_code, code, response.headers.get("retry-after"), detail)


class Recorder:
    """Answers from several client threads, in arrival order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.answers: list[Answer] = []

    def add(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def mark(self) -> int:
        with self._lock:
            return len(self.answers)

    def since(self, mark: int) -> list[Answer]:
        with self._lock:
            return self.answers[mark:]

    def count(self, kind: str, status: int, *, since: int = 0) -> int:
        return sum(1 for a in self.since(since) if a.kind == kind and a.status == status)


class Workers:
    """Client loops in threads until `stop()`; a loop that raises fails the test at `stop()`."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._clients: list[httpx.Client] = []

    def client(self, base_url: str) -> httpx.Client:
        """An HTTP client for one loop, closed at `stop()`."""
        client = httpx.Client(base_url=base_url, timeout=30)
        self._clients.append(client)
        return client

    def spawn(self, loop: Callable[[], None], *, pause: float = 0.01) -> None:
        def run() -> None:
            try:
                while not self.stopping.is_set():
                    loop()
                    self.stopping.wait(pause)  # pacing between requests, not a wait on a state
            except BaseException as error:
                self._errors.append(error)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in self._threads), "a client loop hung"
        for client in self._clients:
            client.close()
        if self._errors:
            raise self._errors[0]


def summary(answers: list[Answer]) -> dict[tuple[str, int, str | None], int]:
    """How many answers of each kind, status and code: the context of a failed wait."""
    counts: dict[tuple[str, int, str | None], int] = {}
    for answer in answers:
        key = (answer.kind, answer.status, answer.code)
        counts[key] = counts.get(key, 0) + 1
    return counts


def wait_for(
    recorder: Recorder, condition: Callable[[], bool], *, timeout: float, what: str, since: int
) -> None:
    """`wait_until`, failing with a summary of the answers since `since`."""
    from tests.infra import wait_until

    try:
        wait_until(condition, timeout=timeout, what=what)
    except AssertionError as error:
        answers = recorder.since(since)
        samples = [a for a in answers if a.status not in (200, 201)][-3:]
        raise AssertionError(f"{error}; answers since: {summary(answers)}; {samples}") from None
