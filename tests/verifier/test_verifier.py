"""TokenVerifier and JwksCache on their own: cache, key withdrawal, single flight, stale keys,
and properties over arbitrary input (hypothesis)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import unicodedata
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from auth_service.passwords.policy import MAX_LENGTH, check_password, normalise
from kit.problems import ProblemError
from tests.gateway.echo import echo_server
from token_verifier import (
    ANY_AUDIENCE,
    InsufficientScope,
    JwksCache,
    TokenRejected,
    TokenVerifier,
    VerificationKey,
    require_scope,
)
from token_verifier.keys import StaticKeys, import_jwks

ISSUER = "https://issuer.example"
AUDIENCE = "todo-api"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def make_key(alg: str) -> Any:
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters={"kid": "k-es", "alg": alg, "use": "sig"})
    if alg == "Ed25519":
        return OKPKey.generate_key("Ed25519", parameters={"kid": "k-ed", "alg": alg, "use": "sig"})
    return RSAKey.generate_key(2048, parameters={"kid": "k-rs", "alg": alg, "use": "sig"})


def sign(key: Any, alg: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "0193aaaa-0000-7000-8000-000000000001",
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "jti": "j1",
        "sid": "s1",
        **overrides,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    header = {"alg": alg, "kid": key.kid, "typ": "at+jwt"}
    return jwt.encode(header, claims, key, algorithms=[alg])


_ES256 = make_key("ES256")


def keyset(*keys: Any) -> StaticKeys:
    return StaticKeys({"keys": [key.as_dict(private=False) for key in keys]})


@pytest.mark.parametrize("alg", ["ES256", "Ed25519", "RS256", "PS256"])
async def test_each_algorithm_verifies(alg: str) -> None:
    key = make_key(alg)
    verifier = TokenVerifier(keyset(key), issuer=ISSUER, audience=AUDIENCE)
    claims = await verifier.verify(sign(key, alg))
    assert claims.sub.startswith("0193") and claims.sid == "s1" and claims.aud == (AUDIENCE,)


async def test_cache_hit_and_expiry_of_cached_tokens() -> None:
    key = make_key("ES256")
    clock = Clock()
    verifier = TokenVerifier(keyset(key), issuer=ISSUER, audience=AUDIENCE, now=clock)
    token = sign(key, "ES256", exp=int(clock.now) + 100)
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first  # served from the cache
    clock.now += 100 + 60  # past exp + leeway: the cached entry is not served
    with pytest.raises(TokenRejected) as rejected:
        await verifier.verify(token)
    assert rejected.value.code == "token_expired"


async def test_cache_can_be_switched_off_and_is_bounded() -> None:
    key = make_key("ES256")
    uncached = TokenVerifier(keyset(key), issuer=ISSUER, audience=AUDIENCE, cache_size=0)
    token = sign(key, "ES256")
    assert await uncached.verify(token) is not await uncached.verify(token)
    bounded = TokenVerifier(keyset(key), issuer=ISSUER, audience=AUDIENCE, cache_size=2)
    tokens = [sign(key, "ES256", jti=f"j{i}") for i in range(3)]
    first = [await bounded.verify(t) for t in tokens]
    assert await bounded.verify(tokens[2]) is first[2]  # kept
    assert await bounded.verify(tokens[0]) is not first[0]  # the oldest was dropped


class ChangingKeys:
    """A key source whose key can be withdrawn."""

    def __init__(self, key: Any) -> None:
        self.keys = import_jwks({"keys": [key.as_dict(private=False)]})
        self.generation = 0

    def withdraw(self) -> None:
        self.keys = {}
        self.generation += 1

    async def key_for(self, kid: str) -> VerificationKey | None:
        return self.keys.get(kid)


async def test_withdrawn_key_invalidates_cached_tokens() -> None:
    key = make_key("ES256")
    source = ChangingKeys(key)
    verifier = TokenVerifier(source, issuer=ISSUER, audience=AUDIENCE)
    token = sign(key, "ES256")
    await verifier.verify(token)
    source.withdraw()
    with pytest.raises(TokenRejected) as rejected:
        await verifier.verify(token)
    assert rejected.value.detail == "token signed by an unknown key"


async def test_claims_rules() -> None:
    key = make_key("ES256")
    verifier = TokenVerifier(keyset(key), issuer=ISSUER, audience=AUDIENCE)
    now = int(time.time())
    accepted = [
        sign(key, "ES256", aud=["other", AUDIENCE]),
        sign(key, "ES256", exp=now - 30),  # within the 60 s leeway
        sign(key, "ES256", nbf=now + 30, iat=now + 30),
        sign(key, "ES256", nbf=None),
    ]
    for token in accepted:
        await verifier.verify(token)
    refused = {
        "token_expired": [sign(key, "ES256", exp=now - 61)],
        "token_invalid": [
            sign(key, "ES256", iss="https://evil.example"),
            sign(key, "ES256", aud="other"),
            sign(key, "ES256", aud=["other"]),
            sign(key, "ES256", nbf=now + 120),
            sign(key, "ES256", iat=now + 120),
            sign(key, "ES256", exp="soon"),
            sign(key, "ES256", exp=None),
            sign(key, "ES256", sub=None),
            sign(key, "ES256", sid=None),
            sign(key, "ES256", exp=True),
        ],
    }
    for code, tokens in refused.items():
        for token in tokens:
            with pytest.raises(TokenRejected) as rejected:
                await verifier.verify(token)
            assert rejected.value.code == code
    with pytest.raises(TokenRejected) as missing:
        await verifier.verify(None)
    assert missing.value.code == "token_missing"
    assert missing.value.www_authenticate("todo-api") == 'Bearer realm="todo-api"'


async def test_client_tokens_and_scopes() -> None:
    """A client's token has no session: its subject is its client id, and it carries scopes."""
    key = make_key("ES256")
    verifier = TokenVerifier(keyset(key), issuer=ISSUER, audience=AUDIENCE)
    client = await verifier.verify(
        sign(key, "ES256", sub="billing", client_id="billing", sid=None, scope="tasks:read x")
    )
    assert client.is_client and client.sid == "" and client.client_id == "billing"
    assert client.scopes == frozenset({"tasks:read", "x"})
    require_scope(client, "tasks:read")
    with pytest.raises(InsufficientScope) as short:
        require_scope(client, "tasks:write")
    assert (
        short.value.www_authenticate() == 'Bearer error="insufficient_scope", scope="tasks:write"'
    )
    person = await verifier.verify(sign(key, "ES256", client_id="todo-app"))
    assert not person.is_client and person.client_id == "todo-app" and person.scopes == frozenset()
    for forged in (
        sign(key, "ES256", sid=None, client_id="other"),  # no session, not acting as itself
        sign(key, "ES256", sub="billing", sid=None, client_id=None),
        sign(key, "ES256", sub="billing", sid=None, client_id="billing", scope=["tasks:read"]),
        sign(key, "ES256", client_id=""),
        sign(key, "ES256", client_id=7),
        sign(key, "ES256", sid=""),
        sign(key, "ES256", aud=""),
    ):
        with pytest.raises(TokenRejected) as rejected:
            await verifier.verify(forged)
        assert rejected.value.code == "token_invalid"
    anywhere = TokenVerifier(keyset(key), issuer=ISSUER, audience=ANY_AUDIENCE)
    assert (await anywhere.verify(sign(key, "ES256", aud="billing-api"))).aud == ("billing-api",)
    challenge = TokenRejected("token_invalid", "bad").www_authenticate(
        "todo-api", resource_metadata="https://x.example/.well-known/oauth-protected-resource"
    )
    assert challenge == (
        'Bearer realm="todo-api", error="invalid_token", error_description="bad", '
        'resource_metadata="https://x.example/.well-known/oauth-protected-resource"'
    )


@pytest.mark.filterwarnings("ignore:Key size should be")
def test_jwks_import_skips_what_it_does_not_understand() -> None:
    good = make_key("ES256").as_dict(private=False)
    private = make_key("Ed25519").as_dict(private=True)
    hmac = OctKey.generate_key(256, parameters={"kid": "h", "alg": "HS256"}).as_dict(private=True)
    weak_rsa = RSAKey.generate_key(1024, parameters={"kid": "w", "alg": "RS256"})
    weak = weak_rsa.as_dict(private=False)
    document = {
        "keys": [
            good,
            private,
            hmac,
            weak,
            {**good, "kid": "enc", "use": "enc"},
            {**good, "kid": "mismatch", "alg": "RS256"},
            {"kty": "EC", "kid": "broken", "alg": "ES256", "crv": "P-256", "x": "!!", "y": "??"},
            "not a key",
            {**good, "kid": None},
        ]
    }
    assert list(import_jwks(document)) == [good["kid"]]
    with pytest.raises(ValueError, match="JWKS"):
        import_jwks({"no": "keys"})


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, list[int]]]:
    """A real HTTP JWKS endpoint (uvicorn on loopback) that counts its requests."""
    key = make_key("ES256")
    document = json.dumps({"keys": [key.as_dict(private=False)]}).encode()
    hits: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        hits.append(1)
        await asyncio.sleep(0.05)  # long enough for concurrent callers to pile up
        headers = [(b"content-type", b"application/json"), (b"cache-control", b"max-age=300")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": document})

    with echo_server(app) as url:
        yield url, hits


async def test_unknown_kid_single_flight_and_cooldown(jwks_server: tuple[str, list[int]]) -> None:
    url, hits = jwks_server
    clock = Clock()
    cache = JwksCache(url, unknown_kid_cooldown=30, clock=clock)
    await cache.refresh("start")
    assert len(hits) == 1
    clock.now += 31
    results = await asyncio.gather(*(cache.key_for(f"unknown-{i}") for i in range(50)))
    assert results == [None] * 50
    assert len(hits) == 2  # fifty unknown kids, one fetch
    assert await cache.key_for("unknown-again") is None
    assert len(hits) == 2  # within the cooldown: no fetch at all
    await cache.close()


async def test_stale_keys_are_served_when_the_endpoint_is_down() -> None:
    key = make_key("ES256")
    document = {"keys": [key.as_dict(private=False)]}
    state = {"up": True}

    def handler(request: httpx.Request) -> httpx.Response:
        if not state["up"]:
            raise httpx.ConnectError("down", request=request)
        return httpx.Response(200, json=document, headers={"cache-control": "max-age=120"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    cache = JwksCache("http://jwks.invalid/jwks.json", client=client)
    assert await cache.refresh("start")
    state["up"] = False
    assert not await cache.refresh("scheduled")
    assert cache.ready
    assert await cache.key_for(key.kid) is not None
    verifier = TokenVerifier(cache, issuer=ISSUER, audience=AUDIENCE)
    assert (await verifier.verify(sign(key, "ES256"))).sid == "s1"
    await client.aclose()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
async def test_any_string_is_rejected_cleanly(garbage: str) -> None:
    verifier = TokenVerifier(keyset(_ES256), issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(TokenRejected) as rejected:
        await verifier.verify(garbage)
    assert rejected.value.code in ("token_missing", "token_invalid")


segment = st.binary(max_size=64).map(lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("="))


@settings(max_examples=300, deadline=None)
@given(segment, segment, segment)
async def test_any_three_segments_are_rejected_cleanly(a: str, b: str, c: str) -> None:
    verifier = TokenVerifier(keyset(_ES256), issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(TokenRejected):
        await verifier.verify(f"{a}.{b}.{c}")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_password_normaliser_properties(password: str) -> None:
    once = normalise(password)
    assert normalise(once) == once  # idempotent
    assert once == unicodedata.normalize("NFKC", password)
    outcome: str | ProblemError
    try:
        outcome = check_password("password", password)
    except ProblemError as problem:
        outcome = problem
    if isinstance(outcome, ProblemError):
        assert (outcome.status, outcome.code in ("weak_password", "validation_error")) == (
            422,
            True,
        )
    else:
        assert outcome == once and 8 <= len(outcome) <= MAX_LENGTH
