"""Refresh rotation, logout, sessions and the OAuth token endpoint — through the real app on
both storages (SQLite + SQL store, PostgreSQL + Redis store)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from litestar.testing import AsyncTestClient

from auth_service.app import create_app
from auth_service.config import Settings
from tests.auth.conftest import STRONG_PASSWORD, unique_email
from tests.auth.test_accounts import claims_of, register

Client = AsyncTestClient[Any]


def bearer(body: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


async def login(client: Client, email: str, **headers: str) -> dict[str, Any]:
    response = await client.post(
        "/auth/login", json={"email": email, "password": STRONG_PASSWORD}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_refresh_rotates_and_grace_returns_the_same_successor(client: Client) -> None:
    signed_up = await register(client, unique_email())
    first = signed_up["refresh_token"]
    refreshed = await client.post("/auth/refresh", json={"refresh_token": first})
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.headers["cache-control"] == "no-store"
    body = refreshed.json()
    assert body["refresh_token"] != first
    assert body["user"] == signed_up["user"]
    assert claims_of(body["access_token"])["sid"] == claims_of(signed_up["access_token"])["sid"]
    # A racing second tab presents the same token within the grace window.
    racing = await client.post("/auth/refresh", json={"refresh_token": first})
    assert racing.status_code == 200
    assert racing.json()["refresh_token"] == body["refresh_token"]
    assert (await client.get("/auth/me", headers=bearer(racing.json()))).status_code == 200


async def test_reuse_revokes_the_session(settings_with: Callable[..., Settings]) -> None:
    app = create_app(settings_with(refresh_reuse_grace=0))
    async with AsyncTestClient(app=app) as client:
        first = (await register(client, unique_email()))["refresh_token"]
        second = (await client.post("/auth/refresh", json={"refresh_token": first})).json()
        await asyncio.sleep(0.01)  # grace is 0 s: any later moment is outside it
        reused = await client.post("/auth/refresh", json={"refresh_token": first})
        assert reused.status_code == 401
        assert reused.headers["content-type"].startswith("application/problem+json")
        assert reused.json()["code"] == "refresh_token_reused"
        current = await client.post(
            "/auth/refresh", json={"refresh_token": second["refresh_token"]}
        )
        assert current.status_code == 401
        assert current.json()["code"] == "session_revoked"


async def test_concurrent_refreshes_yield_one_successor(client: Client) -> None:
    first = (await register(client, unique_email()))["refresh_token"]
    responses = await asyncio.gather(
        *(client.post("/auth/refresh", json={"refresh_token": first}) for _ in range(8))
    )
    assert [response.status_code for response in responses] == [200] * 8
    assert len({response.json()["refresh_token"] for response in responses}) == 1


async def test_logout_ends_the_session_and_is_idempotent(client: Client) -> None:
    body = await register(client, unique_email())
    token = body["refresh_token"]
    assert (await client.post("/auth/logout", json={"refresh_token": token})).status_code == 204
    assert (await client.post("/auth/logout", json={"refresh_token": token})).status_code == 204
    refused = await client.post("/auth/refresh", json={"refresh_token": token})
    assert refused.status_code == 401
    assert refused.json()["code"] == "session_revoked"
    unknown = await client.post("/auth/logout", json={"refresh_token": "x" * 43})
    assert unknown.status_code == 204


async def test_sessions_listing_deleting_and_logout_all(client: Client) -> None:
    email = unique_email()
    first = await register(client, email)
    second = await login(client, email, **{"User-Agent": "phone-app/1.0"})
    other = await register(client, unique_email("other"))

    listed = await client.get("/auth/sessions", headers=bearer(second))
    assert listed.status_code == 200
    sessions = listed.json()
    assert len(sessions) == 2
    current = [item for item in sessions if item["current"]]
    assert len(current) == 1 and current[0]["user_agent"] == "phone-app/1.0"
    assert set(sessions[0]) == {
        "id",
        "created_at",
        "last_used_at",
        "expires_at",
        "user_agent",
        "ip",
        "current",
    }

    other_sid = claims_of(other["access_token"])["sid"]
    not_mine = await client.delete(f"/auth/sessions/{other_sid}", headers=bearer(first))
    assert not_mine.status_code == 404
    assert not_mine.json()["code"] == "not_found"
    first_sid = claims_of(first["access_token"])["sid"]
    assert (
        await client.delete(f"/auth/sessions/{first_sid}", headers=bearer(second))
    ).status_code == 204
    assert (
        await client.delete(f"/auth/sessions/{first_sid}", headers=bearer(second))
    ).status_code == 404
    gone = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert gone.json()["code"] == "session_revoked"

    assert (await client.post("/auth/logout-all", headers=bearer(second))).status_code == 204
    assert (await client.get("/auth/sessions", headers=bearer(second))).json() == []
    ended = await client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert ended.json()["code"] == "session_revoked"
    # Another user's session is untouched.
    still = await client.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert still.status_code == 200


async def test_password_change_ends_every_other_session(client: Client) -> None:
    email = unique_email()
    kept = await register(client, email)
    other = await login(client, email)
    changed = await client.post(
        "/auth/password",
        json={"current_password": STRONG_PASSWORD, "new_password": "a different long passphrase"},
        headers=bearer(kept),
    )
    assert changed.status_code == 204, changed.text
    ended = await client.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert ended.json()["code"] == "session_revoked"
    survived = await client.post("/auth/refresh", json={"refresh_token": kept["refresh_token"]})
    assert survived.status_code == 200


async def test_cookie_mode(client: Client) -> None:
    email = unique_email()
    await register(client, email)
    signed_in = await client.post(
        "/auth/login",
        json={"email": email, "password": STRONG_PASSWORD},
        headers={"X-Auth-Mode": "cookie"},
    )
    assert signed_in.status_code == 200
    assert "refresh_token" not in signed_in.json()
    set_cookie = signed_in.headers["set-cookie"]
    for attribute in ("HttpOnly", "Path=/auth", "SameSite=Strict"):
        assert attribute.lower() in set_cookie.lower()
    assert "secure" not in set_cookie.lower()  # the default issuer is plain-http loopback
    cookie = signed_in.cookies["refresh_token"]

    # CSRF rule: the cookie alone, without the header, is not accepted.
    client.cookies.set("refresh_token", cookie, path="/auth")
    without_header = await client.post("/auth/refresh")
    assert without_header.status_code == 400
    refreshed = await client.post("/auth/refresh", headers={"X-Auth-Mode": "cookie"})
    assert refreshed.status_code == 200, refreshed.text
    assert "refresh_token" not in refreshed.json()
    rotated = refreshed.cookies["refresh_token"]
    assert rotated and rotated != cookie

    logged_out = await client.post("/auth/logout", headers={"X-Auth-Mode": "cookie"})
    assert logged_out.status_code == 204
    assert "max-age=0" in logged_out.headers["set-cookie"].lower()
    client.cookies.clear()
    ended = await client.post("/auth/refresh", json={"refresh_token": rotated})
    assert ended.json()["code"] == "session_revoked"


async def test_secure_cookie_for_https_issuer(settings_with: Callable[..., Settings]) -> None:
    app = create_app(settings_with(issuer="https://auth.example.com"))
    async with AsyncTestClient(app=app) as client:
        response = await client.post(
            "/auth/register",
            json={"email": unique_email(), "password": STRONG_PASSWORD},
            headers={"X-Auth-Mode": "cookie"},
        )
        assert response.status_code == 201
        assert "secure" in response.headers["set-cookie"].lower()


async def test_oauth_token_endpoint(client: Client) -> None:
    token = (await register(client, unique_email()))["refresh_token"]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    granted = await client.post(
        "/oauth/token", content=f"grant_type=refresh_token&refresh_token={token}", headers=form
    )
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert body["token_type"] == "Bearer" and body["refresh_token"] != token
    assert granted.headers["cache-control"] == "no-store"

    cases = [
        ("grant_type=refresh_token&refresh_token=nope", form, "invalid_grant"),
        ("grant_type=password&username=a&password=b", form, "unsupported_grant_type"),
        ("grant_type=refresh_token", form, "invalid_request"),
        ("refresh_token=abc", form, "invalid_request"),
        (
            f"grant_type=refresh_token&refresh_token={token}&refresh_token=x",
            form,
            "invalid_request",
        ),
        (
            '{"grant_type": "refresh_token"}',
            {"Content-Type": "application/json"},
            "invalid_request",
        ),
        ("\xff\xfe", form, "invalid_request"),
        # kit.text_input's refusal, in OAuth's shape on an OAuth route.
        ("grant_type=refresh_token&refresh_token=a%00b", form, "invalid_request"),
        ("grant_type=refresh_token%01&refresh_token=ab", form, "invalid_request"),
    ]
    for content, headers, error in cases:
        response = await client.post(
            "/oauth/token", content=content.encode("latin-1"), headers=headers
        )
        assert response.status_code == 400, (content, response.text)
        assert response.json()["error"] == error, content
        assert "error_description" in response.json()


async def test_bad_refresh_inputs_are_4xx(client: Client) -> None:
    body = await register(client, unique_email())
    cases: list[tuple[dict[str, Any], int, str]] = [
        (
            {"content": b"not json", "headers": {"Content-Type": "application/json"}},
            400,
            "malformed_request",
        ),
        ({}, 400, "malformed_request"),
        ({"json": {}}, 422, "validation_error"),
        ({"json": {"refresh_token": 12}}, 422, "validation_error"),
        ({"json": ["refresh_token"]}, 422, "validation_error"),
        ({"json": {"refresh_token": ""}}, 401, "refresh_token_invalid"),
        ({"json": {"refresh_token": "a" * 5000}}, 401, "refresh_token_invalid"),
        ({"json": {"refresh_token": "\ud7ff\ue000"}}, 401, "refresh_token_invalid"),
        # Control characters are refused before any lookup (kit.text_input), logout included.
        ({"json": {"refresh_token": "\u0000\ud7ff"}}, 422, "validation_error"),
    ]
    for kwargs, status, code in cases:
        for route in ("/auth/refresh", "/auth/logout"):
            response = await client.post(route, **kwargs)
            if route == "/auth/logout" and status == 401:
                assert response.status_code == 204, (kwargs, response.text)
                continue
            assert response.status_code == status, (route, kwargs, response.text)
            assert response.json()["code"] == code, (route, kwargs)
    for path in ("/auth/sessions", "/auth/logout-all"):
        method = client.get if path == "/auth/sessions" else client.post
        unauthenticated = await method(path)
        assert unauthenticated.status_code == 401
        assert unauthenticated.json()["code"] == "token_missing"
    long_id = await client.delete("/auth/sessions/" + "x" * 500, headers=bearer(body))
    assert long_id.status_code == 404
    # Nothing stored was harmed: the session still refreshes.
    still = await client.post("/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert still.status_code == 200
