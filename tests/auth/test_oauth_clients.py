"""OAuth clients in-process, on both storage modes: client credentials with each
authentication method and every way to get it wrong, introspection, revocation, metadata."""

from __future__ import annotations

import base64
import json
import secrets
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey
from litestar.testing import AsyncTestClient

from auth_service.app import create_app
from auth_service.clients.registry import ClientRegistry
from auth_service.clients.secrets import SecretHasher
from auth_service.config import Settings
from kit import database
from tests.auth.conftest import STRONG_PASSWORD, unique_email

Client = AsyncTestClient[Any]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@pytest.fixture
async def registry(auth_settings: Settings) -> AsyncIterator[ClientRegistry]:
    engine = database.create_engine(auth_settings.database_url)
    yield ClientRegistry(
        database.session_factory(engine),
        SecretHasher(auth_settings.key_encryption_key),
        default_audience=auth_settings.audience[0],
        first_party_client_id=auth_settings.first_party_client_id,
    )
    await engine.dispose()


def new_id(label: str) -> str:
    return f"{label}-{secrets.token_hex(3)}"


async def secret_client(
    registry: ClientRegistry, scopes: str = "tasks:read tasks:write introspect", **kwargs: Any
) -> tuple[str, str]:
    client_id = new_id("svc")
    _, secret = await registry.create(client_id, scopes=scopes.split(), secret=True, **kwargs)
    assert secret is not None
    return client_id, secret


async def token_request(client: Client, data: dict[str, str], **headers: str) -> Any:
    return await client.post("/oauth/token", data=data, headers={**FORM, **headers})


async def test_client_secret_basic_grant(client: Client, registry: ClientRegistry) -> None:
    client_id, secret = await secret_client(registry, audiences=["todo-api", "billing-api"])
    answer = await token_request(
        client, {"grant_type": "client_credentials"}, **basic(client_id, secret)
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer" and body["scope"] == "tasks:read tasks:write introspect"
    assert answer.headers["cache-control"] == "no-store"
    claims = claims_of(body["access_token"])
    assert claims["sub"] == claims["client_id"] == client_id
    assert claims["aud"] == "todo-api" and "sid" not in claims and "amr" not in claims
    narrowed = await token_request(
        client,
        {"grant_type": "client_credentials", "scope": "tasks:read", "resource": "billing-api"},
        **basic(client_id, secret),
    )
    assert narrowed.status_code == 200
    assert claims_of(narrowed.json()["access_token"])["aud"] == "billing-api"
    assert narrowed.json()["scope"] == "tasks:read"
    for extra, error in [
        ({"scope": "tasks:read admin"}, "invalid_scope"),
        ({"scope": ""}, "invalid_scope"),
        ({"resource": "other-api"}, "invalid_target"),
    ]:
        refused = await token_request(
            client, {"grant_type": "client_credentials", **extra}, **basic(client_id, secret)
        )
        assert (refused.status_code, refused.json()["error"]) == (400, error), extra


async def test_wrong_secrets_and_methods_are_invalid_client(
    client: Client, registry: ClientRegistry
) -> None:
    client_id, secret = await secret_client(registry)
    grant = {"grant_type": "client_credentials"}
    for headers, data in [
        (basic(client_id, secret + "x"), grant),
        (basic(client_id, ""), grant),
        (basic("no-such-client", secret), grant),
        (basic(client_id.upper(), secret), grant),
        (basic(client_id, "x" * 5000), grant),
        ({"Authorization": "Basic %%%"}, grant),
        ({"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}, grant),
        ({}, {**grant, "client_id": client_id, "client_secret": secret}),  # client_secret_post
        ({}, grant),  # no authentication at all
    ]:
        refused = await token_request(client, data, **headers)
        assert refused.status_code == 401, (headers, data, refused.text)
        assert refused.json()["error"] == "invalid_client"
        if headers.get("Authorization", "").startswith("Basic"):
            assert refused.headers["www-authenticate"].startswith("Basic")
    # A client registered with keys only cannot use a secret, whatever it sends.
    keys_only = new_id("keys")
    await registry.create(
        keys_only, scopes=["tasks:read"], jwks=jwks_of(ECKey.generate_key("P-256"))
    )
    refused = await token_request(client, grant, **basic(keys_only, secret))
    assert refused.status_code == 401


async def test_disabled_deleted_and_rotated_clients(
    client: Client, registry: ClientRegistry
) -> None:
    client_id, secret = await secret_client(registry)
    grant = {"grant_type": "client_credentials"}
    assert (await token_request(client, grant, **basic(client_id, secret))).status_code == 200
    await registry.set_disabled(client_id, True)
    assert (await token_request(client, grant, **basic(client_id, secret))).status_code == 401
    await registry.set_disabled(client_id, False)
    assert (await token_request(client, grant, **basic(client_id, secret))).status_code == 200
    # Rotation with an overlap: both work; without one: only the new secret.
    second = await registry.rotate_secret(client_id, overlap=3600)
    for each in (secret, second):
        assert (await token_request(client, grant, **basic(client_id, each))).status_code == 200
    third = await registry.rotate_secret(client_id, overlap=0)
    for each, status in ((secret, 401), (second, 401), (third, 200)):
        answer = await token_request(client, grant, **basic(client_id, each))
        assert answer.status_code == status
    assert len((await registry.get(client_id)).secrets) == 1
    await registry.delete(client_id)
    assert (await token_request(client, grant, **basic(client_id, third))).status_code == 401


def jwks_of(*keys: Any) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in keys]}


def assertion(
    key: Any,
    client_id: str,
    *,
    alg: str = "ES256",
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    now = int(time.time())
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": "http://127.0.0.1:8000/oauth/token",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    body = {name: value for name, value in body.items() if value is not None}
    return jwt.encode({"alg": alg, **(header or {})}, body, key, algorithms=[alg])


def forged_none(client_id: str) -> str:
    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": "http://127.0.0.1:8000",
              "exp": now + 300, "jti": uuid.uuid4().hex}  # fmt: skip
    return f"{segment({'alg': 'none'})}.{segment(claims)}."


def with_assertion(token: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": token,
        **extra,
    }


async def test_private_key_jwt_grant_and_every_refusal(
    client: Client, registry: ClientRegistry
) -> None:
    ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
    rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    client_id = new_id("jwt")
    await registry.create(client_id, scopes=["tasks:read"], jwks=jwks_of(ec, rsa))
    for token in (
        assertion(ec, client_id, header={"kid": "ec-1"}),
        assertion(rsa, client_id, alg="RS256", header={"kid": "rsa-1"}),
        assertion(
            rsa, client_id, alg="PS256", header={"kid": "rsa-1"}, aud="http://127.0.0.1:8000"
        ),
        assertion(ec, client_id, aud=["x", "http://127.0.0.1:8000"]),  # no kid: the one EC key
    ):
        granted = await token_request(client, with_assertion(token))
        assert granted.status_code == 200, granted.text
        assert claims_of(granted.json()["access_token"])["sub"] == client_id
    replayed = assertion(ec, client_id)
    assert (await token_request(client, with_assertion(replayed))).status_code == 200
    other_key = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
    now = int(time.time())
    refused = {
        "replay": replayed,
        "wrong aud": assertion(ec, client_id, aud="http://127.0.0.1:8001/oauth/token"),
        "expired": assertion(ec, client_id, exp=now - 120, iat=now - 400),
        "far-future exp": assertion(ec, client_id, exp=now + 7200),
        "no exp": assertion(ec, client_id, exp=None),
        "no jti": assertion(ec, client_id, jti=None),
        "future iat": assertion(ec, client_id, iat=now + 600),
        "iss is not sub": assertion(ec, client_id, sub="someone-else"),
        "other client's name": assertion(ec, "no-such-client"),
        "wrong key": assertion(other_key, client_id, header={"kid": "ec-1"}),
        "unknown kid": assertion(ec, client_id, header={"kid": "nope"}),
        "alg none": forged_none(client_id),
        "HMAC with the public key": jwt.encode(
            {"alg": "HS256", "kid": "ec-1"},
            {
                "iss": client_id,
                "sub": client_id,
                "aud": "http://127.0.0.1:8000",
                "exp": now + 300,
                "jti": uuid.uuid4().hex,
            },
            OctKey.import_key(str(ec.as_dict(private=False)).encode()),
            algorithms=["HS256"],
        ),
        "embedded jwk": assertion(ec, client_id, header={"jwk": ec.as_dict(private=False)}),
        "garbage": "not.a.jwt",
        "huge": "a" * 9000,
    }
    for why, token in refused.items():
        answer = await token_request(client, with_assertion(token))
        assert answer.status_code == 401, (why, answer.text)
        assert answer.json()["error"] == "invalid_client", why
    mismatched = await token_request(
        client, with_assertion(assertion(ec, client_id), client_id="x")
    )
    assert mismatched.status_code == 401
    # Half an assertion, or another kind: an unsupported method (invalid_client); two methods
    # at once: a malformed request.
    for data in (
        {**with_assertion(assertion(ec, client_id)), "client_assertion_type": "jwt"},
        {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE},
    ):
        answer = await token_request(client, data)
        assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")
    both = await token_request(
        client, with_assertion(assertion(ec, client_id)), **basic(client_id, "secret")
    )
    assert (both.status_code, both.json()["error"]) == (400, "invalid_request")


async def user_tokens(client: Client) -> dict[str, Any]:
    answer = await client.post(
        "/auth/register", json={"email": unique_email("oauth"), "password": STRONG_PASSWORD}
    )
    assert answer.status_code == 201
    body: dict[str, Any] = answer.json()
    return body


async def introspect(client: Client, credentials: dict[str, str], token: str, **extra: str) -> Any:
    return await client.post(
        "/oauth/introspect", data={"token": token, **extra}, headers={**FORM, **credentials}
    )


async def test_introspection(
    client: Client,
    registry: ClientRegistry,
    auth_settings: Settings,
    settings_with: Callable[..., Settings],
) -> None:
    client_id, secret = await secret_client(registry)
    reader = basic(client_id, secret)
    user = await user_tokens(client)
    active = await introspect(client, reader, user["access_token"])
    assert active.status_code == 200 and active.headers["cache-control"] == "no-store"
    body = active.json()
    assert body["active"] is True and body["sub"] == user["user"]["id"]
    assert body["client_id"] == "todo-app" and body["token_type"] == "Bearer"
    assert body["iss"] == auth_settings.issuer and body["aud"] == "todo-api"
    refresh = await introspect(
        client, reader, user["refresh_token"], token_type_hint="refresh_token"
    )
    assert refresh.json()["active"] is True and refresh.json()["sub"] == user["user"]["id"]
    # Its own token, with its scopes.
    own = (await token_request(client, {"grant_type": "client_credentials"}, **reader)).json()
    mine = (await introspect(client, reader, own["access_token"])).json()
    assert mine["active"] is True and mine["scope"] == own["scope"] and mine["sub"] == client_id
    # Expired: minted by a replica whose clock is an hour behind, same keys and database.
    async with AsyncTestClient(
        app=create_app(auth_settings, now=lambda: time.time() - 3600)
    ) as past:
        old = await user_tokens(past)
    rotated = await client.post("/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert rotated.status_code == 200
    stranger = ECKey.generate_key("P-256", parameters={"kid": "k"})
    elsewhere = jwt.encode(
        {"alg": "ES256", "kid": "k", "typ": "at+jwt"},
        {**claims_of(user["access_token"]), "iss": "https://elsewhere.example"},
        stranger,
    )
    for why, token in {
        "expired": old["access_token"],
        "rotated refresh": user["refresh_token"],
        "garbage": "garbage",
        "other issuer": elsewhere,
        "empty-ish": "a.b.c",
    }.items():
        answer = await introspect(client, reader, token)
        assert (answer.status_code, answer.json()) == (200, {"active": False}), why
    # Logged out: its access token is no longer active either.
    await client.post("/auth/logout", json={"refresh_token": rotated.json()["refresh_token"]})
    ended = await introspect(client, reader, user["access_token"])
    assert ended.json() == {"active": False}
    # Who may ask.
    no_scope_id, no_scope_secret = await secret_client(registry, scopes="tasks:read")
    denied = await introspect(client, basic(no_scope_id, no_scope_secret), own["access_token"])
    assert (denied.status_code, denied.json()["error"]) == (403, "insufficient_scope")
    anonymous = await introspect(client, {}, own["access_token"], client_id="todo-app")
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "invalid_client")
    # A client learns nothing of tokens meant for another audience.
    billing_id, billing_secret = await secret_client(registry, audiences=["billing-api"])
    foreign = await introspect(client, basic(billing_id, billing_secret), own["access_token"])
    assert foreign.json() == {"active": False}


async def test_revocation(client: Client, registry: ClientRegistry) -> None:
    user = await user_tokens(client)
    public = {"client_id": "todo-app"}
    revoked = await client.post(
        "/oauth/revoke", data={"token": user["refresh_token"], **public}, headers=FORM
    )
    assert (revoked.status_code, revoked.content) == (200, b"")
    again = await client.post("/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert again.status_code == 401
    # An access token ends its session too; a confidential client may revoke what it holds.
    other = await user_tokens(client)
    client_id, secret = await secret_client(registry)
    by_access = await client.post(
        "/oauth/revoke",
        data={"token": other["access_token"], "token_type_hint": "access_token"},
        headers={**FORM, **basic(client_id, secret)},
    )
    assert by_access.status_code == 200
    ended = await client.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert ended.status_code == 401 and ended.json()["code"] == "session_revoked"
    for token in ("unknown", "a.b.c", "x" * 600):
        answer = await client.post("/oauth/revoke", data={"token": token, **public}, headers=FORM)
        assert answer.status_code == 200
    nobody = await client.post("/oauth/revoke", data={"token": "x"}, headers=FORM)
    assert (nobody.status_code, nobody.json()["error"]) == (401, "invalid_client")
    stranger = await client.post(
        "/oauth/revoke", data={"token": "x", "client_id": "someone"}, headers=FORM
    )
    assert stranger.status_code == 401


async def test_refresh_grant_belongs_to_the_first_party_client(
    client: Client, registry: ClientRegistry
) -> None:
    user = await user_tokens(client)
    client_id, secret = await secret_client(registry)
    grant = {"grant_type": "refresh_token", "refresh_token": user["refresh_token"]}
    stolen = await token_request(client, grant, **basic(client_id, secret))
    assert (stolen.status_code, stolen.json()["error"]) == (400, "invalid_grant")
    named = await token_request(client, {**grant, "client_id": "someone-else"})
    assert named.status_code == 401
    own = await token_request(client, {**grant, "client_id": "todo-app"})
    assert own.status_code == 200 and "refresh_token" in own.json()


async def test_client_tokens_cannot_use_a_persons_routes(
    client: Client, registry: ClientRegistry
) -> None:
    client_id, secret = await secret_client(registry)
    own = (
        await token_request(
            client, {"grant_type": "client_credentials"}, **basic(client_id, secret)
        )
    ).json()
    for path in ("/auth/me", "/auth/sessions"):
        answer = await client.get(path, headers={"Authorization": f"Bearer {own['access_token']}"})
        assert (answer.status_code, answer.json()["code"]) == (403, "forbidden"), path


async def test_metadata_says_only_what_is_served(client: Client, auth_settings: Settings) -> None:
    first = await client.get("/.well-known/oauth-authorization-server")
    second = await client.get("/.well-known/openid-configuration")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    document = first.json()
    issuer = auth_settings.issuer
    assert document["issuer"] == issuer
    assert document["token_endpoint"] == f"{issuer}/oauth/token"
    assert document["introspection_endpoint"] == f"{issuer}/oauth/introspect"
    assert document["revocation_endpoint"] == f"{issuer}/oauth/revoke"
    assert set(document["grant_types_supported"]) == {"refresh_token", "client_credentials"}
    assert {"client_secret_basic", "private_key_jwt"} <= set(
        document["token_endpoint_auth_methods_supported"]
    )
    assert "none" not in document["token_endpoint_auth_signing_alg_values_supported"]
    assert "HS256" not in document["token_endpoint_auth_signing_alg_values_supported"]
    assert "userinfo_endpoint" not in document and "authorization_endpoint" not in document
    # Every endpoint it names answers here (not a 404).
    for name in ("token_endpoint", "introspection_endpoint", "revocation_endpoint"):
        path = document[name].removeprefix(issuer)
        assert (await client.post(path, data={}, headers=FORM)).status_code != 404, name


BAD_VALUES = ["a\x00b", "\x01", "\x7f", "\ud800", "line\nbreak", "x" * 20_000]


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
async def test_bad_form_input_is_a_clean_4xx(
    client: Client, registry: ClientRegistry, path: str
) -> None:
    client_id, secret = await secret_client(registry)

    for value in BAD_VALUES:
        for name in ("grant_type", "token", "scope", "client_assertion", "client_id", "resource"):
            body = (
                urllib.parse.quote(name) + "=" + urllib.parse.quote(value, errors="surrogatepass")
            )
            answer = await client.post(
                path, content=body.encode(), headers={**FORM, **basic(client_id, secret)}
            )
            assert 400 <= answer.status_code < 500, (path, name, repr(value[:10]), answer.text)
    for content, content_type in [
        (b"\xff\xfe=\x00", FORM["Content-Type"]),
        (b"grant_type=a&grant_type=b", FORM["Content-Type"]),
        (b'{"grant_type": "client_credentials"}', "application/json"),
        (b"x" * 70_000, FORM["Content-Type"]),
    ]:
        answer = await client.post(path, content=content, headers={"Content-Type": content_type})
        assert 400 <= answer.status_code < 500, (path, content[:20], answer.text)
