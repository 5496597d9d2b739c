"""Administration, the audit log and the revocation list's auth side, in-process on both
storage modes."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from auth_service.admin.guard import admin_claims
from auth_service.audit.models import AuditEvent
from auth_service.config import Settings
from auth_service.users.models import User
from kit import database
from kit.problems import ProblemError
from tests.auth.conftest import STRONG_PASSWORD, unique_email
from tests.infra import async_wait_until
from token_verifier import VerifiedClaims

Client = AsyncTestClient[Any]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(client: Client, email: str | None = None) -> dict[str, Any]:
    answer = await client.post(
        "/auth/register", json={"email": email or unique_email("adm"), "password": STRONG_PASSWORD}
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def login(client: Client, email: str, password: str = STRONG_PASSWORD) -> Any:
    return await client.post("/auth/login", json={"email": email, "password": password})


@pytest.fixture
async def admin(client: Client, auth_settings: Settings) -> dict[str, Any]:
    """A user made admin in the database (as the CLI does), then signed in again."""
    email = unique_email("admin")
    user = await register(client, email)
    engine = database.create_engine(auth_settings.database_url)
    async with database.session_factory(engine).begin() as db:
        await db.execute(update(User).where(User.email == email).values(roles=["admin"]))
    await engine.dispose()
    signed_in = await login(client, email)
    assert signed_in.status_code == 200
    body: dict[str, Any] = signed_in.json()
    assert claims_of(body["access_token"])["roles"] == ["admin"]
    return {**body, "email": email, "id": user["user"]["id"]}


async def test_admin_routes_refuse_everyone_else(
    client: Client, admin: dict[str, Any], auth_settings: Settings
) -> None:
    person = await register(client)
    target = person["user"]["id"]
    routes = [
        ("GET", "/admin/users"),
        ("GET", f"/admin/users/{target}"),
        ("POST", f"/admin/users/{target}/disable"),
        ("DELETE", f"/admin/users/{target}/sessions"),
        ("PUT", f"/admin/users/{target}/roles"),
        ("GET", "/admin/audit"),
        ("GET", "/admin/clients"),
        ("POST", "/admin/clients"),
    ]
    for method, path in routes:
        body = {"roles": ["admin"]} if method == "PUT" else None
        nobody = await client.request(method, path, json=body)
        assert nobody.status_code == 401, (method, path)
        plain = await client.request(
            method, path, json=body, headers=bearer(person["access_token"])
        )
        assert (plain.status_code, plain.json()["code"]) == (403, "forbidden"), (method, path)
    # A client's token is no person's, admin or not.
    created = await client.post(
        "/admin/clients",
        json={"client_id": f"adm-{secrets.token_hex(3)}", "scopes": ["x"], "secret": True},
        headers=bearer(admin["access_token"]),
    )
    assert created.status_code == 201, created.text
    basic = base64.b64encode(
        f"{created.json()['client_id']}:{created.json()['client_secret']}".encode()
    ).decode()
    token = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={**FORM, "Authorization": f"Basic {basic}"},
    )
    refused = await client.get("/admin/users", headers=bearer(token.json()["access_token"]))
    assert refused.status_code == 403
    # The user was not changed by any of it.
    assert (await login(client, person["user"]["email"])).status_code == 200


async def test_second_factor_rule() -> None:
    def claims(amr: list[str]) -> VerifiedClaims:
        raw = {"roles": ["admin"], "amr": amr}
        return VerifiedClaims("u", "s", "j", "i", ("a",), 0, 0, raw, "todo-app")

    async def has_factor(_: str) -> bool:
        return True

    async def has_none(_: str) -> bool:
        return False

    with pytest.raises(ProblemError) as refused:
        await admin_claims(claims(["pwd"]), has_factor)
    assert refused.value.status == 403
    assert (await admin_claims(claims(["pwd", "otp"]), has_factor)).sub == "u"
    assert (await admin_claims(claims(["hwk", "user"]), has_factor)).sub == "u"
    assert (await admin_claims(claims(["pwd"]), has_none)).sub == "u"


async def test_disable_enable_and_what_it_ends(client: Client, admin: dict[str, Any]) -> None:
    email = unique_email("victim")
    person = await register(client, email)
    user_id = person["user"]["id"]
    headers = bearer(admin["access_token"])
    found = await client.get("/admin/users", params={"q": email[:12]}, headers=headers)
    assert found.status_code == 200 and user_id in [item["id"] for item in found.json()["items"]]
    by_id = await client.get("/admin/users", params={"q": user_id}, headers=headers)
    assert [item["id"] for item in by_id.json()["items"]] == [user_id]
    detail = (await client.get(f"/admin/users/{user_id}", headers=headers)).json()
    assert detail["email"] == email and detail["disabled"] is False
    assert len(detail["sessions"]) == 1 and detail["factors"] == []
    assert (
        await client.post(f"/admin/users/{user_id}/disable", headers=headers)
    ).status_code == 204
    wrong = await login(client, email, "not the password at all")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_credentials")
    right = await login(client, email)
    assert (right.status_code, right.json()["code"]) == (403, "account_disabled")
    refresh = await client.post("/auth/refresh", json={"refresh_token": person["refresh_token"]})
    assert refresh.status_code == 401
    listed = await client.get("/internal/revocations", params={"since": "0"})
    items = listed.json()["items"]
    assert any(item["type"] == "subject" and item["sub"] == user_id for item in items)
    assert any(item.get("sid") == claims_of(person["access_token"])["sid"] for item in items)
    assert (await client.post(f"/admin/users/{user_id}/enable", headers=headers)).status_code == 204
    assert (await login(client, email)).status_code == 200
    for path in (f"/admin/users/{user_id}x", "/admin/users/not-a-uuid", f"/admin/users/{'0' * 80}"):
        assert (await client.get(path, headers=headers)).status_code == 404


async def test_roles_end_sessions_and_reach_new_tokens(
    client: Client, admin: dict[str, Any]
) -> None:
    email = unique_email("promoted")
    person = await register(client, email)
    user_id = person["user"]["id"]
    headers = bearer(admin["access_token"])
    changed = await client.put(
        f"/admin/users/{user_id}/roles", json={"roles": ["auditor", "admin"]}, headers=headers
    )
    assert changed.status_code == 200 and changed.json()["roles"] == ["admin", "auditor"]
    old = await client.post("/auth/refresh", json={"refresh_token": person["refresh_token"]})
    assert old.status_code == 401
    again = (await login(client, email)).json()
    assert claims_of(again["access_token"])["roles"] == ["admin", "auditor"]
    refreshed = await client.post("/auth/refresh", json={"refresh_token": again["refresh_token"]})
    assert claims_of(refreshed.json()["access_token"])["roles"] == ["admin", "auditor"]
    for bad in (
        ["Admin"],
        ["a" * 40],
        ["x\x00"],
        "admin",
        [1],
        ["ok"] * 0 + [f"r{i}" for i in range(20)],
    ):
        answer = await client.put(
            f"/admin/users/{user_id}/roles", json={"roles": bad}, headers=headers
        )
        assert answer.status_code in (400, 422), (bad, answer.text)


async def test_audit_log_records_and_pages(
    client: Client, admin: dict[str, Any], auth_settings: Settings
) -> None:
    email = unique_email("audited")
    person = await register(client, email)
    user_id = person["user"]["id"]
    assert (await login(client, email, "wrong password here")).status_code == 401
    assert (await login(client, email)).status_code == 200
    headers = bearer(admin["access_token"])
    await client.delete(f"/admin/users/{user_id}/sessions", headers=headers)

    async def types() -> set[str]:
        answer = await client.get("/admin/audit", params={"user_id": user_id}, headers=headers)
        return {item["type"] for item in answer.json()["items"]}

    wanted = {"user.registered", "login.failed", "login.succeeded", "sessions.revoked"}
    await async_wait_until(
        lambda: _contains(types(), wanted), timeout=10, what="the audit events to be written"
    )
    page = await client.get(
        "/admin/audit", params={"user_id": user_id, "limit": 2}, headers=headers
    )
    first = page.json()
    assert len(first["items"]) == 2 and first["next"]
    rest = await client.get(
        "/admin/audit", params={"user_id": user_id, "after": first["next"]}, headers=headers
    )
    ids = [item["id"] for item in first["items"] + rest.json()["items"]]
    assert len(ids) == len(set(ids)) >= 4 and ids == sorted(ids, reverse=True)
    failed = await client.get(
        "/admin/audit", params={"user_id": user_id, "type": "login.failed"}, headers=headers
    )
    event = failed.json()["items"][0]
    assert event["subject"] == user_id and event["data"] == {"reason": "invalid_credentials"}
    assert set(event) == {"id", "at", "type", "actor", "subject", "ip", "user_agent", "data"}
    ended = await client.get(
        "/admin/audit", params={"user_id": user_id, "type": "sessions.revoked"}, headers=headers
    )
    assert ended.json()["items"][0]["actor"] == admin["id"]
    # A person sees their own activity only.
    mine = await client.get("/auth/activity", headers=bearer(admin["access_token"]))
    assert mine.status_code == 200
    assert all(item["subject"] == admin["id"] for item in mine.json()["items"])


async def _contains(found: Any, wanted: set[str]) -> bool:
    got: set[str] = await found
    return wanted <= got


async def test_audit_entries_hold_no_secret(
    client: Client, admin: dict[str, Any], auth_settings: Settings
) -> None:
    email = unique_email("scan")
    wrong = "Wr0ng-" + secrets.token_hex(8)
    person = await register(client, email)
    await login(client, email, wrong)
    await client.post(
        "/auth/password",
        json={"current_password": STRONG_PASSWORD, "new_password": "another good passphrase 7"},
        headers=bearer(person["access_token"]),
    )
    created = await client.post(
        "/admin/clients",
        json={"client_id": f"scan-{secrets.token_hex(3)}", "scopes": ["x"], "secret": True},
        headers=bearer(admin["access_token"]),
    )
    client_secret = created.json()["client_secret"]
    rotated = await client.post(
        f"/admin/clients/{created.json()['client_id']}/secrets",
        json={"overlap": 0},
        headers=bearer(admin["access_token"]),
    )
    assert rotated.status_code == 201
    await client.post("/auth/logout", json={"refresh_token": person["refresh_token"]})
    secrets_used = [
        STRONG_PASSWORD, wrong, "another good passphrase 7", person["refresh_token"],
        person["access_token"], client_secret, rotated.json()["client_secret"],
        admin["access_token"], admin["refresh_token"],
    ]  # fmt: skip
    engine = database.create_engine(auth_settings.database_url)

    async def rows() -> list[str]:
        async with database.session_factory(engine)() as db:
            events = (await db.execute(select(AuditEvent))).scalars()
            return [json.dumps({**event.data, "type": event.type, "ua": event.user_agent})
                    for event in events]  # fmt: skip

    async def logged_out() -> bool:
        return any('"session.revoked"' in row for row in await rows())

    await async_wait_until(logged_out, timeout=10, what="the logout's audit event")
    text = "\n".join(await rows())
    await engine.dispose()
    for secret in secrets_used:
        for part in (secret, secret[:24], secret.split(".")[-1]):
            assert part not in text
    assert "password.changed" in text and "client.secret_rotated" in text


async def test_admin_clients_api(client: Client, admin: dict[str, Any]) -> None:
    headers = bearer(admin["access_token"])
    client_id = f"api-{secrets.token_hex(3)}"
    created = await client.post(
        "/admin/clients",
        json={"client_id": client_id, "scopes": ["tasks:read"], "secret": True},
        headers=headers,
    )
    assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
    secret = created.json()["client_secret"]
    shown = await client.get(f"/admin/clients/{client_id}", headers=headers)
    assert shown.status_code == 200 and secret not in shown.text
    assert client_id in [
        item["client_id"]
        for item in (await client.get("/admin/clients", headers=headers)).json()["items"]
    ]
    again = await client.post(
        "/admin/clients",
        json={"client_id": client_id, "scopes": ["x"], "secret": True},
        headers=headers,
    )
    assert again.status_code == 409
    basic = {
        "Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    }
    grant = {"grant_type": "client_credentials"}
    assert (
        await client.post("/oauth/token", data=grant, headers={**FORM, **basic})
    ).status_code == 200
    patched = await client.patch(
        f"/admin/clients/{client_id}", json={"disabled": True}, headers=headers
    )
    assert patched.status_code == 200 and patched.json()["disabled"] is True
    assert (
        await client.post("/oauth/token", data=grant, headers={**FORM, **basic})
    ).status_code == 401
    revocations = (await client.get("/internal/revocations", params={"since": "0"})).json()
    assert any(item.get("sub") == client_id for item in revocations["items"])
    for bad in (
        {"client_id": "Bad Id", "scopes": ["x"], "secret": True},
        {"client_id": "okay-id", "scopes": [], "secret": True},
        {"client_id": "okay-id", "scopes": ["x"]},
        {"client_id": "okay-id", "scopes": ["x"], "secret": True, "jwks": {"keys": "no"}},
        {"client_id": "okay-id\x00", "scopes": ["x"], "secret": True},
        {"client_id": 7},
    ):
        answer = await client.post("/admin/clients", json=bad, headers=headers)
        assert 400 <= answer.status_code < 500, (bad, answer.text)
    assert (await client.delete(f"/admin/clients/{client_id}", headers=headers)).status_code == 204
    assert (await client.get(f"/admin/clients/{client_id}", headers=headers)).status_code == 404
    assert (await client.delete(f"/admin/clients/{client_id}", headers=headers)).status_code == 404


async def test_revocation_list_is_bounded_and_served_by_cursor(
    client: Client, auth_settings: Settings
) -> None:
    person = await register(client)
    sid = claims_of(person["access_token"])["sid"]
    await client.post("/auth/logout", json={"refresh_token": person["refresh_token"]})
    first = (await client.get("/internal/revocations", params={"since": "0"})).json()
    entry = next(item for item in first["items"] if item.get("sid") == sid)
    # It lives as long as an access token of that session could (TTL + the verifiers' leeway).
    import time

    assert entry["until"] <= time.time() + auth_settings.access_token_ttl + 61
    later = (await client.get("/internal/revocations", params={"since": first["next"]})).json()
    assert len(later["items"]) <= len(first["items"])
    for bad in ("x", "-1", "nan", "inf", "1e400", "\x00"):
        answer = await client.get("/internal/revocations", params={"since": bad})
        assert answer.status_code in (400, 422), bad


async def client_token(client: Client, admin: dict[str, Any], scopes: list[str]) -> str:
    created = await client.post(
        "/admin/clients",
        json={"client_id": f"feed-{secrets.token_hex(3)}", "scopes": scopes, "secret": True},
        headers=bearer(admin["access_token"]),
    )
    raw = f"{created.json()['client_id']}:{created.json()['client_secret']}"
    answer = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={**FORM, "Authorization": "Basic " + base64.b64encode(raw.encode()).decode()},
    )
    return str(answer.json()["access_token"])


async def test_account_deletion_reaches_the_events_feed(
    client: Client, admin: dict[str, Any]
) -> None:
    email = unique_email("leaving")
    person = await register(client, email)
    user_id = person["user"]["id"]
    headers = bearer(person["access_token"])
    wrong = await client.request(
        "DELETE", "/auth/me", json={"current_password": "not it at all"}, headers=headers
    )
    assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_credentials")
    for bad in ({}, {"current_password": 7}, {"current_password": "x\x00"}):
        answer = await client.request("DELETE", "/auth/me", json=bad, headers=headers)
        assert 400 <= answer.status_code < 500, bad
    gone = await client.request(
        "DELETE", "/auth/me", json={"current_password": STRONG_PASSWORD}, headers=headers
    )
    assert gone.status_code == 204
    assert (await login(client, email)).status_code == 401
    refresh = await client.post("/auth/refresh", json={"refresh_token": person["refresh_token"]})
    assert refresh.status_code == 401
    reader = bearer(await client_token(client, admin, ["events:read"]))

    async def deleted() -> bool:
        cursor = "0"
        while True:
            page = (
                await client.get("/internal/events", params={"after": cursor}, headers=reader)
            ).json()
            if any(e["type"] == "user.deleted" and e["subject"] == user_id for e in page["events"]):
                return True
            if page["next"] == cursor:
                return False
            cursor = page["next"]

    await async_wait_until(deleted, timeout=15, what="user.deleted in the events feed")
    first = (await client.get("/internal/events", params={"limit": 1}, headers=reader)).json()
    assert len(first["events"]) == 1 and set(first["events"][0]) == {
        "id",
        "type",
        "subject",
        "at",
        "data",
    }
    second = (
        await client.get(
            "/internal/events", params={"after": first["next"], "limit": 1}, headers=reader
        )
    ).json()
    assert not second["events"] or int(second["events"][0]["id"]) > int(first["events"][0]["id"])
    # People's tokens and clients without the scope are refused; garbage cursors are 4xx.
    people = await client.get("/internal/events", headers=bearer(admin["access_token"]))
    assert people.status_code == 403
    unscoped = bearer(await client_token(client, admin, ["tasks:read"]))
    short = await client.get("/internal/events", headers=unscoped)
    assert (short.status_code, short.json()["code"]) == (403, "insufficient_scope")
    assert (await client.get("/internal/events")).status_code == 401
    for cursor in ("-1", "x", "1" * 30, "\x00"):
        answer = await client.get("/internal/events", params={"after": cursor}, headers=reader)
        assert 400 <= answer.status_code < 500, cursor
    # The admin route deletes the same way.
    other = await register(client)
    removed = await client.delete(
        f"/admin/users/{other['user']['id']}", headers=bearer(admin["access_token"])
    )
    assert removed.status_code == 204
    again = await client.delete(
        f"/admin/users/{other['user']['id']}", headers=bearer(admin["access_token"])
    )
    assert again.status_code == 404
