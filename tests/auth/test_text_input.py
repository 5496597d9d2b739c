"""Bad text on every text input of every auth route, on both storages (kit.text_input): NUL,
other control characters and lone surrogates are refused with a 4xx naming the field — never a
500 (a NUL email used to be one on PostgreSQL) — and nothing is stored from a refused request."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from litestar.testing import AsyncTestClient

from tests.auth.conftest import STRONG_PASSWORD, unique_email
from tests.auth.test_accounts import register
from tests.infra import ServiceProcess

Client = AsyncTestClient[Any]

# (label, character) refused in every text field; the C1 control and DEL are text to JSON.
REFUSED = [
    ("NUL", "\x00"),
    ("SOH", "\x01"),
    ("ESC", "\x1b"),
    ("DEL", "\x7f"),
    ("C1 NEL", "\x85"),
]
# Refused in a one-line field by its type (kit.text_input.Text), allowed in a multiline one.
LINE_BREAKS = [("LF", "\n"), ("CR", "\r"), ("TAB", "\t")]
# Lone surrogates can only travel as JSON escapes; the JSON decoder refuses them: 400.
SURROGATES = [("lone high surrogate", "\ud800"), ("lone low surrogate", "\udfff")]
# In a URL they arrive as percent-encoded UTF-8 of a surrogate, which is not UTF-8 at all.
URL_ESCAPES = [
    ("NUL", "%00"),
    ("SOH", "%01"),
    ("ESC", "%1B"),
    ("DEL", "%7F"),
    ("C1 NEL", "%C2%85"),
    ("LF", "%0A"),
]
URL_NOT_UTF8 = [("encoded surrogate", "%ED%A0%80"), ("invalid UTF-8", "%FF")]
HEADER_REFUSED = [("NUL", "\x00"), ("SOH", "\x01"), ("ESC", "\x1b"), ("DEL", "\x7f")]


@dataclass
class Field:
    """One JSON text field of one route: `body(value)` is the request body with `value` in it."""

    route: str
    name: str
    body: Callable[[str], dict[str, Any]]
    bearer: bool = False


def _credentials(field: str) -> Callable[[str], dict[str, Any]]:
    def body(value: str) -> dict[str, Any]:
        sound = {"email": unique_email(), "password": STRONG_PASSWORD}
        return {**sound, field: sound[field][:6] + value + sound[field][6:]}

    return body


def _password_change(field: str) -> Callable[[str], dict[str, Any]]:
    def body(value: str) -> dict[str, Any]:
        sound = {"current_password": STRONG_PASSWORD, "new_password": "another good passphrase"}
        return {**sound, field: sound[field] + value}

    return body


JSON_FIELDS = [
    Field("/auth/register", "email", _credentials("email")),
    Field("/auth/register", "password", _credentials("password")),
    Field("/auth/login", "email", _credentials("email")),
    Field("/auth/login", "password", _credentials("password")),
    Field("/auth/refresh", "refresh_token", lambda value: {"refresh_token": "abc" + value}),
    Field("/auth/logout", "refresh_token", lambda value: {"refresh_token": "abc" + value}),
    Field("/auth/password", "current_password", _password_change("current_password"), True),
    Field("/auth/password", "new_password", _password_change("new_password"), True),
]


def _json(body: dict[str, Any]) -> bytes:
    """As a client writes it: non-ASCII as `\\uXXXX` escapes (lone surrogates too)."""
    return json.dumps(body, ensure_ascii=True).encode()


def assert_refused(response: Any, field: str, status: int = 422) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    if status == 422:
        assert problem["code"] == "validation_error"
        assert [error["field"] for error in problem["errors"]] == [field], problem
    else:
        assert problem["code"] == "malformed_request"


@pytest.fixture
async def signed_in(client: Client) -> dict[str, Any]:
    body = await register(client, unique_email())
    body["headers"] = {"Authorization": f"Bearer {body['access_token']}"}
    return body


async def test_json_fields(client: Client, signed_in: dict[str, Any]) -> None:
    cases = [(label, char, 422) for label, char in REFUSED + LINE_BREAKS]
    cases += [(label, char, 400) for label, char in SURROGATES]
    for field in JSON_FIELDS:
        headers = {"Content-Type": "application/json"}
        if field.bearer:
            headers.update(signed_in["headers"])
        for label, char, status in cases:
            response = await client.post(
                field.route, content=_json(field.body(char)), headers=headers
            )
            assert response.status_code == status, (field.route, field.name, label)
            assert_refused(response, field.name, status)
        # DEL and the C1 controls may also travel unescaped, as raw UTF-8.
        for label, char in [("DEL", "\x7f"), ("C1 NEL", "\x85"), ("C1 CSI", "\x9b")]:
            raw = json.dumps(field.body(char), ensure_ascii=False).encode()
            response = await client.post(field.route, content=raw, headers=headers)
            assert response.status_code == 422, (field.route, field.name, "raw " + label)
            assert_refused(response, field.name)


async def test_nothing_is_stored_from_a_refused_request(
    client: Client, signed_in: dict[str, Any]
) -> None:
    email = unique_email()
    for _, char in REFUSED + LINE_BREAKS:
        refused = await client.post(
            "/auth/register", json={"email": email + char, "password": STRONG_PASSWORD}
        )
        assert refused.status_code == 422, refused.text
    # No user was made from any of them: the address is still free, and its login is unknown.
    unknown = await client.post("/auth/login", json={"email": email, "password": STRONG_PASSWORD})
    assert unknown.status_code == 401
    assert (
        await client.post("/auth/register", json={"email": email, "password": STRONG_PASSWORD})
    ).status_code == 201
    # The refused password changes changed nothing: the password is the old one.
    login = {"email": signed_in["user"]["email"], "password": STRONG_PASSWORD}
    assert (await client.post("/auth/login", json=login)).status_code == 200


async def test_the_nul_email_login_of_the_black_box_report(client: Client, storage: str) -> None:
    """The reported 500: PostgreSQL refused the NUL inside the email lookup."""
    response = await client.post(
        "/auth/login",
        content=b'{"email": "ada\\u0000@example.com", "password": "whatever it is"}',
        headers={"Content-Type": "application/json"},
    )
    assert_refused(response, "email")


async def test_user_agent_stored_with_the_session(
    client: Client, signed_in: dict[str, Any]
) -> None:
    email = signed_in["user"]["email"]
    for label, char in HEADER_REFUSED:
        response = await client.post(
            "/auth/login",
            json={"email": email, "password": STRONG_PASSWORD},
            headers={"User-Agent": f"agent{char}/1.0"},
        )
        assert response.status_code == 422, label
        assert_refused(response, "user-agent")
    # A user agent with obs-text bytes (UTF-8 from a careless client; 0x81 is a C1 code point
    # once read as Latin-1) is kept as sent.
    kept = await client.post(
        "/auth/login",
        json={"email": email, "password": STRONG_PASSWORD},
        headers=[(b"User-Agent", "agent/1.0 éā".encode())],
    )
    assert kept.status_code == 200, kept.text
    sessions = await client.get("/auth/sessions", headers=signed_in["headers"])
    agents = sorted(session["user_agent"] for session in sessions.json())
    assert len(agents) == 2  # registration's and the one accepted login: none refused stored
    assert "agent/1.0 \xc3\xa9\xc4\x81" in agents


async def test_other_headers_path_and_query(client: Client, signed_in: dict[str, Any]) -> None:
    bearer = signed_in["headers"]
    for label, char in HEADER_REFUSED:
        for name in ("X-Auth-Mode", "Cookie", "X-Request-ID"):
            response = await client.post(
                "/auth/refresh", json={"refresh_token": "abc"}, headers={name: f"a{char}b"}
            )
            assert response.status_code == 422, (name, label)
            assert_refused(response, name.lower())
        broken = await client.get("/auth/me", headers={"Authorization": f"Bearer a{char}b"})
        assert broken.status_code in (401, 422), label  # refused, before or by the verifier
    for label, escaped in URL_ESCAPES:
        path = await client.delete(f"/auth/sessions/abc{escaped}", headers=bearer)
        assert_refused(path, "session_id")
        query = await client.get(f"/auth/me?hint=a{escaped}", headers=bearer)
        assert query.status_code == 422, label
        assert_refused(query, "hint")
    for label, escaped in URL_NOT_UTF8:
        # Not UTF-8: decoded with replacement characters, which are text (no session has it).
        path = await client.delete(f"/auth/sessions/abc{escaped}", headers=bearer)
        assert path.status_code in (204, 404), (label, path.text)
        query = await client.get(f"/auth/me?hint={escaped}", headers=bearer)
        assert query.status_code == 200, (label, query.text)


async def test_oauth_form_fields_answer_in_oauth_shape(client: Client) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for label, char in REFUSED + SURROGATES:
        escaped = quote(char.encode("utf-8", "surrogatepass"))
        for body in (
            f"grant_type=refresh_token&refresh_token=abc{escaped}",
            f"grant_type=refresh{escaped}&refresh_token=abc",
        ):
            response = await client.post("/oauth/token", content=body, headers=form)
            assert response.status_code == 400, (label, body, response.text)
            assert response.json()["error"] in (
                "invalid_request",
                "invalid_grant",
                "unsupported_grant_type",
            )
            assert response.headers["content-type"].startswith("application/json")


def test_raw_header_bytes_over_http(auth_server: ServiceProcess) -> None:
    """Over a real connection the HTTP parser sees the bytes first; whoever refuses, it is a
    4xx, never a 500."""
    host, port = auth_server.url.removeprefix("http://").split(":")
    for char in (b"\x00", b"\x01", b"\x1b", b"\x7f"):
        request = (
            b"GET /auth/me HTTP/1.1\r\nHost: x\r\nUser-Agent: a" + char + b"b\r\n"
            b"Connection: close\r\n\r\n"
        )
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            connection.sendall(request)
            status_line = connection.recv(4096).split(b"\r\n", 1)[0]
        status = int(status_line.split()[1])
        assert 400 <= status < 500, (char, status_line)
