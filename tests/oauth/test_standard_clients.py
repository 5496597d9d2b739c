"""Internal services as OAuth clients, end to end on real processes (two auth replicas, the
todo service, the gateway), on both storage modes: a standard OAuth client library (Authlib)
with each authentication method, the CLI that registers them, and the todo API's scopes."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.infra import (
    RedisSpace,
    Stack,
    free_port,
    fresh_postgres_database,
    run_cli,
    start_stack,
)

PASSWORD = "correct horse battery staple"
# Real stacks of processes: make test runs them, make test-fast leaves them out.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["embedded", "postgres+redis"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("oauth-stack")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = {"AUTH_ISSUER": issuer, "TODO_ISSUER": issuer}
    if request.param == "embedded":
        stack = start_stack(workdir, env, auth_replicas=2, gateway_port=port)
        yield stack
        stack.stop()
        return
    space: RedisSpace = request.getfixturevalue("redis_space")
    with (
        fresh_postgres_database("oauth-auth") as auth_db,
        fresh_postgres_database("oauth-todo") as todo_db,
    ):
        env |= {
            "AUTH_DATABASE_URL": auth_db,
            "TODO_DATABASE_URL": todo_db,
            "AUTH_REDIS_URL": space.url,
            "AUTH_REDIS_PREFIX": f"{space.prefix}oauth-auth:",
        }
        stack = start_stack(workdir, env, auth_replicas=2, gateway_port=port)
        yield stack
        stack.stop()


def clients_cli(stack: Stack, *args: str) -> Any:
    done = run_cli("auth_service", "clients", *args, env=stack.env, cwd=stack.workdir)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "--json" in args else done.stdout


def secret_client(stack: Stack, scopes: str) -> tuple[str, str]:
    name = f"svc-{secrets.token_hex(3)}"
    created = clients_cli(stack, "create", name, "--scope", scopes, "--secret", "--json")
    assert set(created) == {"client_id", "client_secret"} and created["client_id"] == name
    return name, str(created["client_secret"])


def key_client(stack: Stack, scopes: str) -> tuple[str, RSAKey]:
    name = f"jwt-{secrets.token_hex(3)}"
    key = RSAKey.generate_key(2048, parameters={"kid": f"{name}-1"})
    jwks_file = stack.workdir / f"{name}.jwks.json"
    jwks_file.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    created = clients_cli(
        stack, "create", name, "--scope", scopes, "--jwks-file", str(jwks_file), "--json"
    )
    assert created == {"client_id": name}
    return name, key


def person(stack: Stack) -> dict[str, Any]:
    email = f"oauth-{secrets.token_hex(4)}@example.com"
    answer = httpx.post(f"{stack.url}/auth/register", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_authlib_client_secret_basic(stack: Stack) -> None:
    client_id, secret = secret_client(stack, "tasks:read introspect")
    async with AsyncOAuth2Client(
        client_id, secret, token_endpoint_auth_method="client_secret_basic"
    ) as oauth:
        token = await oauth.fetch_token(f"{stack.url}/oauth/token", grant_type="client_credentials")
        assert token["token_type"] == "Bearer" and token["scope"] == "tasks:read introspect"
        looked_up = await oauth.introspect_token(
            f"{stack.url}/oauth/introspect", token=token["access_token"]
        )
        assert looked_up.status_code == 200
        assert looked_up.json()["active"] is True and looked_up.json()["sub"] == client_id
        user = person(stack)
        theirs = await oauth.introspect_token(
            f"{stack.url}/oauth/introspect", token=user["refresh_token"]
        )
        assert theirs.json()["active"] is True and theirs.json()["sub"] == user["user"]["id"]
        # RFC 7009 through the same client: revoking a person's refresh token ends the session.
        revoked = await oauth.revoke_token(f"{stack.url}/oauth/revoke", token=user["refresh_token"])
        assert revoked.status_code == 200
        async with httpx.AsyncClient() as plain:
            ended = await plain.post(
                f"{stack.url}/auth/refresh", json={"refresh_token": user["refresh_token"]}
            )
        assert ended.status_code == 401
        unknown = await oauth.revoke_token(f"{stack.url}/oauth/revoke", token="never-issued")
        assert unknown.status_code == 200
        gone = await oauth.introspect_token(
            f"{stack.url}/oauth/introspect", token=user["refresh_token"]
        )
        assert gone.json() == {"active": False}


async def test_authlib_private_key_jwt(stack: Stack) -> None:
    client_id, key = key_client(stack, "tasks:read introspect")
    token_endpoint = f"{stack.url}/oauth/token"
    async with AsyncOAuth2Client(
        client_id, key, token_endpoint_auth_method="private_key_jwt"
    ) as oauth:
        oauth.register_client_auth_method(PrivateKeyJWT(token_endpoint))
        first = await oauth.fetch_token(token_endpoint, grant_type="client_credentials")
        second = await oauth.fetch_token(token_endpoint, grant_type="client_credentials")
        assert first["access_token"] != second["access_token"]
        looked_up = await oauth.introspect_token(
            f"{stack.url}/oauth/introspect", token=first["access_token"]
        )
        assert looked_up.json()["active"] is True and looked_up.json()["client_id"] == client_id
    # Authlib's default (no token endpoint given): `aud` is the URL it posts to.
    async with AsyncOAuth2Client(
        client_id, key, token_endpoint_auth_method="private_key_jwt"
    ) as oauth:
        oauth.register_client_auth_method(PrivateKeyJWT())
        assert "access_token" in await oauth.fetch_token(
            token_endpoint, grant_type="client_credentials"
        )


def test_assertion_replay_fails_across_replicas(stack: Stack) -> None:
    client_id, key = key_client(stack, "tasks:read")
    now = int(time.time())
    assertion = jwt.encode(
        {"alg": "RS256", "kid": key.kid},
        {
            "iss": client_id,
            "sub": client_id,
            "aud": f"{stack.url}/oauth/token",
            "exp": now + 120,
            "iat": now,
            "jti": uuid.uuid4().hex,
        },
        key,
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    first, second = stack.auths
    assert httpx.post(f"{first.url}/oauth/token", data=form).status_code == 200
    replayed = httpx.post(f"{second.url}/oauth/token", data=form)
    assert (replayed.status_code, replayed.json()["error"]) == (401, "invalid_client")


def test_todo_scopes_for_client_tokens(stack: Stack) -> None:
    alice = person(stack)
    alice_tasks = f"{stack.url}/api/{alice['user']['id']}/tasks"
    created = httpx.post(
        alice_tasks, json={"title": "alice's"}, headers=bearer(alice["access_token"])
    )
    assert created.status_code == 201

    def client_token(scopes: str) -> str:
        client_id, secret = secret_client(stack, scopes)
        answer = httpx.post(
            f"{stack.url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    reader = bearer(client_token("tasks:read"))
    listed = httpx.get(alice_tasks, headers=reader)
    assert listed.status_code == 200 and listed.json()["items"][0]["title"] == "alice's"
    one = httpx.get(f"{alice_tasks}/{created.json()['id']}", headers=reader)
    assert one.status_code == 200
    for method, url, body in [
        ("POST", alice_tasks, {"title": "x"}),
        ("PUT", f"{alice_tasks}/{created.json()['id']}", {"title": "x"}),
        ("PATCH", f"{alice_tasks}/{created.json()['id']}/complete", None),
        ("DELETE", f"{alice_tasks}/{created.json()['id']}", None),
    ]:
        refused = httpx.request(method, url, json=body, headers=reader)
        assert refused.status_code == 403, (method, refused.text)
        assert refused.json()["code"] == "insufficient_scope"
        assert refused.headers["www-authenticate"] == (
            'Bearer error="insufficient_scope", scope="tasks:write"'
        )
    writer = bearer(client_token("tasks:read tasks:write"))
    written = httpx.post(alice_tasks, json={"title": "from a service"}, headers=writer)
    assert written.status_code == 201
    nothing = bearer(client_token("introspect"))
    refused = httpx.get(alice_tasks, headers=nothing)
    assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"
    assert refused.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="tasks:read"'
    )
    # A person's token still cannot cross users, with or without scopes anywhere.
    bob = person(stack)
    crossing = httpx.get(alice_tasks, headers=bearer(bob["access_token"]))
    assert crossing.status_code == 403 and crossing.json()["code"] == "forbidden"
    after = httpx.get(alice_tasks, headers=bearer(alice["access_token"])).json()
    assert {item["title"] for item in after["items"]} == {"alice's", "from a service"}


def test_disabled_and_deleted_clients_and_secret_rotation(stack: Stack) -> None:
    client_id, secret = secret_client(stack, "tasks:read")

    def grant(with_secret: str) -> int:
        return httpx.post(
            f"{stack.url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, with_secret),
        ).status_code

    assert grant(secret) == 200
    clients_cli(stack, "disable", client_id)
    assert grant(secret) == 401
    clients_cli(stack, "enable", client_id)
    assert grant(secret) == 200
    rotated = clients_cli(stack, "rotate-secret", client_id, "--json")["client_secret"]
    assert grant(secret) == 200 and grant(rotated) == 200  # the overlap (24 h by default)
    last = clients_cli(stack, "rotate-secret", client_id, "--overlap", "0", "--json")
    assert grant(rotated) == 401 and grant(secret) == 401 and grant(last["client_secret"]) == 200
    shown = clients_cli(stack, "show", client_id, "--json")
    assert shown["auth_methods"] == ["client_secret_basic"] and len(shown["secrets"]) == 1
    assert last["client_secret"] not in json.dumps(shown)
    clients_cli(stack, "delete", client_id)
    assert grant(last["client_secret"]) == 401


def test_resource_metadata_through_the_gateway(stack: Stack) -> None:
    answer = httpx.get(f"{stack.url}/.well-known/oauth-protected-resource")
    assert answer.status_code == 200
    document = answer.json()
    assert document["authorization_servers"] == [stack.url]
    assert document["scopes_supported"] == ["tasks:read", "tasks:write"]
    assert document["resource"] == "todo-api" and document["bearer_methods_supported"] == ["header"]
    challenge = httpx.get(f"{stack.url}/api/{uuid.uuid4()}/tasks").headers["www-authenticate"]
    assert f'resource_metadata="{stack.url}/.well-known/oauth-protected-resource"' in challenge
    assert httpx.get(f"{stack.url}/internal/events").status_code == 404


def test_cli_refuses_bad_names_with_status_2(stack: Stack, tmp_path: Path) -> None:
    for args in (
        ["create", "Has_Capitals", "--scope", "x", "--secret"],
        ["create", str(uuid.uuid4()), "--scope", "x", "--secret"],
        ["create", "ab", "--scope", "x", "--secret"],
        ["create", "todo-app", "--scope", "x", "--secret"],
        ["create", "ok-name", "--scope", "x"],  # no way to authenticate
        ["create", "ok-name", "--scope", 'bad"scope', "--secret"],
    ):
        done = run_cli("auth_service", "clients", *args, env=stack.env, cwd=stack.workdir)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stdout == "" and done.stderr.strip()
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [RSAKey.generate_key(2048).as_dict(private=True)]}))
    leaked = run_cli(
        "auth_service", "clients", "create", "leaky", "--scope", "x", "--jwks-file", str(private),
        env=stack.env, cwd=stack.workdir,
    )  # fmt: skip
    assert leaked.returncode == 2 and "private key material" in leaked.stderr
    missing = run_cli("auth_service", "clients", "delete", "nobody-here", env=stack.env,
                      cwd=stack.workdir)  # fmt: skip
    assert missing.returncode == 1 and "no client" in missing.stderr
