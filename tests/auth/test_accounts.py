"""Registration, login, /auth/me, password change — through the real app on both storages."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import select

from auth_service.app import create_app
from auth_service.config import Settings
from auth_service.users.models import User
from kit import database
from tests.auth.conftest import STRONG_PASSWORD, unique_email

Client = AsyncTestClient[Any]


def _segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def claims_of(token: str) -> dict[str, Any]:
    return _segment(token, 1)


def header_of(token: str) -> dict[str, Any]:
    return _segment(token, 0)


async def register(client: Client, email: str, password: str = STRONG_PASSWORD) -> dict[str, Any]:
    response = await client.post("/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_register_login_me(client: Client, auth_settings: Settings) -> None:
    email = unique_email("ada")
    registered = await client.post(
        "/auth/register", json={"email": f"  {email.upper()} ", "password": STRONG_PASSWORD}
    )
    assert registered.status_code == 201
    assert registered.headers["cache-control"] == "no-store"
    body = registered.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == auth_settings.access_token_ttl
    assert len(body["refresh_token"]) >= 43
    assert 0 < body["refresh_token_expires_in"] <= auth_settings.refresh_token_ttl
    assert body["user"]["email"] == email

    login = await client.post("/auth/login", json={"email": email, "password": STRONG_PASSWORD})
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    assert login.json()["user"]["id"] == body["user"]["id"]
    assert login.json()["refresh_token"] != body["refresh_token"]

    me = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["id"] == body["user"]["id"]
    assert me.json()["email"] == email
    assert "created_at" in me.json()
    assert "password" not in me.text


async def test_access_token_format(client: Client, auth_settings: Settings) -> None:
    body = await register(client, unique_email())
    token = body["access_token"]
    header, claims = header_of(token), claims_of(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert header["kid"]
    assert set(claims) == {
        "iss", "sub", "aud", "iat", "nbf", "exp", "jti", "sid", "client_id", "auth_time", "amr"
    }  # fmt: skip
    assert claims["client_id"] == auth_settings.first_party_client_id == "todo-app"
    assert claims["amr"] == ["pwd"] and claims["auth_time"] <= claims["iat"]
    assert claims["iss"] == auth_settings.issuer
    assert claims["aud"] == "todo-api"
    assert claims["sub"] == body["user"]["id"]
    assert claims["exp"] - claims["iat"] == auth_settings.access_token_ttl
    # UUIDv7: version nibble 7, so ids sort by creation time.
    assert body["user"]["id"][14] == "7"


async def test_duplicate_email_in_another_case_is_409(client: Client) -> None:
    email = unique_email("dup")
    await register(client, email)
    again = await client.post(
        "/auth/register", json={"email": email.upper(), "password": "another strong passphrase"}
    )
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["code"] == "email_taken"


async def test_bad_registrations_are_422_with_field_errors(client: Client) -> None:
    cases = [
        ({"email": "not-an-email", "password": STRONG_PASSWORD}, "email", "validation_error"),
        ({"email": "a@b", "password": STRONG_PASSWORD}, "email", "validation_error"),
        ({"email": "", "password": STRONG_PASSWORD}, "email", "validation_error"),
        ({"email": unique_email(), "password": "short1!"}, "password", "weak_password"),
        ({"email": unique_email(), "password": "x" * 129}, "password", "validation_error"),
        ({"email": unique_email(), "password": "password123"}, "password", "weak_password"),
        ({"email": unique_email(), "password": "qwertyuiop"}, "password", "weak_password"),
        ({"email": unique_email(), "password": 12345678}, "password", "validation_error"),
        ({"email": unique_email()}, "password", "validation_error"),
        ({"password": STRONG_PASSWORD}, "email", "validation_error"),
    ]
    for payload, field, code in cases:
        response = await client.post("/auth/register", json=payload)
        assert response.status_code == 422, (payload, response.text)
        problem = response.json()
        assert problem["code"] == code, (payload, problem)
        assert problem["status"] == 422
        assert field in [error["field"] for error in problem["errors"]], (payload, problem)


async def test_password_is_nfkc_normalised(client: Client) -> None:
    email = unique_email("nfkc")
    # Fullwidth letters normalise (NFKC) to their ASCII forms.
    await register(client, email, "ｃｏｒｒｅｃｔ horse battery staple")
    login = await client.post("/auth/login", json={"email": email, "password": STRONG_PASSWORD})
    assert login.status_code == 200


async def test_malformed_and_oversized_bodies(client: Client) -> None:
    for raw in (b"{not json", b"", b"\xff\xfe", b'{"email": "a@example.com", "password": '):
        response = await client.post(
            "/auth/login", content=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (raw, response.text)
        assert response.json()["code"] == "malformed_request"
    for body in ([1, 2], "string", 5, None):
        response = await client.post("/auth/login", json=body)
        assert response.status_code in (400, 422), (body, response.text)
    huge = {"email": unique_email(), "password": "x" * (70 * 1024)}
    response = await client.post("/auth/register", json=huge)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_unknown_email_and_wrong_password_look_identical(client: Client) -> None:
    email = unique_email("known")
    await register(client, email)
    wrong = await client.post("/auth/login", json={"email": email, "password": "wrong password!!"})
    unknown = await client.post(
        "/auth/login", json={"email": unique_email("nobody"), "password": "wrong password!!"}
    )
    malformed = await client.post(
        "/auth/login", json={"email": "nobody", "password": "wrong password!!"}
    )
    for response in (wrong, unknown, malformed):
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_credentials"
    assert wrong.json() == unknown.json() == malformed.json()
    assert wrong.headers.get("www-authenticate") == unknown.headers.get("www-authenticate")


async def test_account_lockout_after_repeated_failures(
    settings_with: Callable[..., Settings],
) -> None:
    app = create_app(settings_with(login_failure_limit="3/minute"))
    async with AsyncTestClient(app=app) as client:
        email = unique_email("locked")
        await register(client, email)
        for _ in range(3):
            failed = await client.post(
                "/auth/login", json={"email": email, "password": "nope nope"}
            )
            assert failed.status_code == 401
        locked = await client.post(
            "/auth/login", json={"email": email, "password": STRONG_PASSWORD}
        )
        assert locked.status_code == 429
        assert locked.json()["code"] == "rate_limited"
        assert int(locked.headers["retry-after"]) >= 1
        # Another account is not affected by this one's failures.
        other = unique_email("free")
        await register(client, other)
        ok = await client.post("/auth/login", json={"email": other, "password": STRONG_PASSWORD})
        assert ok.status_code == 200


async def test_rehash_on_login_when_parameters_change(
    settings_with: Callable[..., Settings],
) -> None:
    email = unique_email("rehash")
    async with AsyncTestClient(app=create_app(settings_with(argon2_time_cost=1))) as client:
        await register(client, email)
    app = create_app(settings_with(argon2_time_cost=3))
    async with AsyncTestClient(app=app) as client:
        login = await client.post("/auth/login", json={"email": email, "password": STRONG_PASSWORD})
        assert login.status_code == 200
    user = await read_user(settings_with().database_url, email)
    assert ",t=3," in user.password_hash
    async with AsyncTestClient(app=create_app(settings_with(argon2_time_cost=3))) as client:
        again = await client.post("/auth/login", json={"email": email, "password": STRONG_PASSWORD})
        assert again.status_code == 200


async def read_user(database_url: str, email: str) -> User:
    """Read a user row over a connection of the test's own (the app's pool is on its loop)."""
    engine = database.create_engine(database_url)
    try:
        async with database.session_factory(engine)() as session:
            return (await session.scalars(select(User).where(User.email == email))).one()
    finally:
        await engine.dispose()


async def test_change_password(client: Client) -> None:
    email = unique_email("change")
    body = await register(client, email)
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    wrong = await client.post(
        "/auth/password",
        json={"current_password": "not it at all", "new_password": "a brand new passphrase"},
        headers=auth,
    )
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "invalid_credentials"
    weak = await client.post(
        "/auth/password",
        json={"current_password": STRONG_PASSWORD, "new_password": "password"},
        headers=auth,
    )
    assert weak.status_code == 422
    assert weak.json()["errors"][0]["field"] == "new_password"
    garbage = await client.post("/auth/password", json={"current_password": 1}, headers=auth)
    assert garbage.status_code == 422
    unauthenticated = await client.post(
        "/auth/password",
        json={"current_password": STRONG_PASSWORD, "new_password": "x y z w v u t s"},
    )
    assert unauthenticated.status_code == 401
    ok = await client.post(
        "/auth/password",
        json={"current_password": STRONG_PASSWORD, "new_password": "a brand new passphrase"},
        headers=auth,
    )
    assert ok.status_code == 204
    old = await client.post("/auth/login", json={"email": email, "password": STRONG_PASSWORD})
    assert old.status_code == 401
    new = await client.post(
        "/auth/login", json={"email": email, "password": "a brand new passphrase"}
    )
    assert new.status_code == 200


async def test_me_rejects_missing_and_bad_tokens(client: Client) -> None:
    missing = await client.get("/auth/me")
    assert missing.status_code == 401
    assert missing.json()["code"] == "token_missing"
    assert missing.headers["www-authenticate"] == 'Bearer realm="todo-api"'
    for value in (
        "Bearer",
        "Basic abc",
        "Bearer not.a.token",
        "Bearer " + "a" * 9000,
        "Bearer ééé".encode("latin-1"),
    ):
        headers = {b"authorization": value if isinstance(value, bytes) else value.encode()}
        response = await client.get("/auth/me", headers=headers)
        assert response.status_code == 401, (value[:20], response.text)
        assert response.json()["code"] in ("token_missing", "token_invalid")
    body = await register(client, unique_email())
    token = body["access_token"]
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload[:-2]}AA.{signature}"
    response = await client.get("/auth/me", headers={"Authorization": f"Bearer {tampered}"})
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
