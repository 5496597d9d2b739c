"""The verifier's framework adapters in process: what verification adds to a request through the
FastAPI dependency, through the pure ASGI middleware in front of FastAPI, and through the Litestar
integration, each against the same framework's bare handler, in one run.

Each app is called as ASGI (a scope, a receive, a send that drops the answer) on one event loop,
no server or socket: the figure is the framework's and the adapter's own CPU. The same valid
token on every request (the verified-token cache is hit, as in the throughput rows); process
CPU time per request, the best of interleaved rounds (the order turned every round).
"""

# No `from __future__ import annotations`: the FastAPI routes below close over a local `auth`.
import asyncio
import gc
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI
from joserfc import jws
from joserfc.jwk import ECKey
from litestar import Litestar, Request, get

from tests.bench import rows
from tests.bench.measure import Bench
from token_verifier import StaticKeys, TokenVerifier, VerifiedClaims
from token_verifier.asgi import BearerAuthMiddleware
from token_verifier.fastapi import EXCEPTION_HANDLERS as FASTAPI_HANDLERS
from token_verifier.fastapi import BearerAuth
from token_verifier.litestar import EXCEPTION_HANDLERS as LITESTAR_HANDLERS
from token_verifier.litestar import bearer_auth

ISSUER = "http://bench.invalid"
AUDIENCE = "todo-api"
App = Callable[..., Any]


def _signed() -> tuple[TokenVerifier, str]:
    key = ECKey.generate_key("P-256", parameters={"kid": "bench", "alg": "ES256"})
    jwks = {"keys": [{**key.as_dict(private=False), "kid": "bench", "alg": "ES256"}]}
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "ada", "aud": AUDIENCE, "iat": now, "exp": now + 3600,
              "sid": "s", "jti": "j", "scope": "tasks:read"}  # fmt: skip
    token = jws.serialize_compact(
        {"alg": "ES256", "kid": "bench", "typ": "at+jwt"}, json.dumps(claims).encode(), key
    )
    return TokenVerifier(StaticKeys(jwks), issuer=ISSUER, audience=AUDIENCE), token


def fastapi_apps(verifier: TokenVerifier) -> tuple[App, App, App]:
    bare = FastAPI()

    @bare.get("/r")
    async def bare_handler() -> dict[str, str]:
        return {"sub": "ada"}

    auth = BearerAuth(verifier, realm=AUDIENCE)
    protected = FastAPI(exception_handlers=FASTAPI_HANDLERS)

    @protected.get("/r")
    async def handler(claims: Annotated[VerifiedClaims, auth.require()]) -> dict[str, str]:
        return {"sub": claims.sub}

    middleware = BearerAuthMiddleware(bare, verifier=verifier, realm=AUDIENCE)
    return bare, protected, middleware


def litestar_apps(verifier: TokenVerifier) -> tuple[App, App]:
    @get("/r")
    async def bare_handler() -> dict[str, str]:
        return {"sub": "ada"}

    @get("/r")
    async def handler(request: Request[VerifiedClaims, Any, Any]) -> dict[str, str]:
        return {"sub": request.user.sub}

    bare = Litestar([bare_handler])
    protected = Litestar(
        [handler],
        middleware=[bearer_auth(verifier, realm=AUDIENCE)],
        exception_handlers=LITESTAR_HANDLERS,
    )
    return bare, protected


async def _drive(app: App, token: str, count: int) -> float:
    """Process CPU seconds per request for `count` GET /r."""
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    gc.collect()
    gc.disable()  # as timeit does: a collection falling in one variant's run is noise
    started = time.process_time()
    for _ in range(count):
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": "/r", "raw_path": b"/r", "root_path": "",
            "query_string": b"", "headers": headers, "client": ("127.0.0.1", 1),
            "server": ("bench", 80), "state": {},
        }  # fmt: skip
        await app(scope, receive, send)
    elapsed = time.process_time() - started
    gc.enable()
    if set(statuses) != {200}:
        raise RuntimeError(f"unexpected statuses {sorted(set(statuses))}")
    return elapsed / count


@dataclass(frozen=True)
class AdapterCosts:
    """Best per-request CPU seconds of each app."""

    fastapi_bare: float
    fastapi_dependency: float
    fastapi_asgi_middleware: float
    litestar_bare: float
    litestar_middleware: float

    @property
    def fastapi_overhead(self) -> float:
        return (self.fastapi_dependency - self.fastapi_bare) / self.fastapi_bare

    @property
    def asgi_overhead(self) -> float:
        return (self.fastapi_asgi_middleware - self.fastapi_bare) / self.fastapi_bare

    @property
    def litestar_overhead(self) -> float:
        return (self.litestar_middleware - self.litestar_bare) / self.litestar_bare


def measure(count: int, rounds: int) -> AdapterCosts:
    verifier, token = _signed()
    fastapi_bare, fastapi_dependency, asgi_middleware = fastapi_apps(verifier)
    litestar_bare, litestar_middleware = litestar_apps(verifier)
    apps = {
        "fastapi_bare": fastapi_bare,
        "fastapi_dependency": fastapi_dependency,
        "fastapi_asgi_middleware": asgi_middleware,
        "litestar_bare": litestar_bare,
        "litestar_middleware": litestar_middleware,
    }

    async def run() -> dict[str, float]:
        best = dict.fromkeys(apps, float("inf"))
        for app in apps.values():  # warm-up: imports, routing caches, the verified token
            await _drive(app, token, 200)
        order = list(apps)
        for _ in range(rounds):
            for name in order:
                best[name] = min(best[name], await _drive(apps[name], token, count))
            order.reverse()
        return best

    return AdapterCosts(**asyncio.run(run()))


def verifier_adapters(bench: Bench) -> None:
    quick = bench.timing.quick
    count, rounds = (1000, 5) if quick else (3000, 9)
    costs = measure(count, rounds)

    def us(seconds: float) -> str:
        return f"{seconds * 1e6:.1f} µs"

    bench.report.info(
        rows.VERIFIER_ADAPTERS,
        measured=(
            f"FastAPI: bare handler {us(costs.fastapi_bare)}, with the dependency "
            f"+{us(costs.fastapi_dependency - costs.fastapi_bare)}, with the ASGI middleware "
            f"instead +{us(costs.fastapi_asgi_middleware - costs.fastapi_bare)}; Litestar: bare "
            f"handler {us(costs.litestar_bare)}, with bearer_auth "
            f"+{us(costs.litestar_middleware - costs.litestar_bare)} (process CPU per request, "
            f"ASGI in process, no server; same token, cache hit; best of {rounds} interleaved "
            f"rounds × {count:,})"
        ),
        ratio=(
            f"FastAPI dependency +{costs.fastapi_overhead:.0%}, ASGI middleware "
            f"+{costs.asgi_overhead:.0%}, Litestar +{costs.litestar_overhead:.0%} "
            f"of the bare handler"
        ),
    )
