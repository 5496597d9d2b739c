"""kit.openapi and kit.problems' OAuth variant on a small app, as the OAuth routes will use
them: the document says what the route answers, and kit's own refusals (a control character)
come back in RFC 6749's shape with the status the document lists."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Router, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.testing import AsyncTestClient

from kit.app import build_app
from kit.openapi import (
    ANONYMOUS,
    BEARER,
    BEARER_SCHEME,
    CLIENT_AUTHENTICATION,
    CLIENT_BASIC_SCHEME,
    client_credentials_scheme,
    oauth_error_responses,
    problem_responses,
    requirements,
    security_schemes,
)
from kit.problems import oauth_exception_handlers
from kit.text_input import Text


class RevokeForm(msgspec.Struct):
    token: Text
    token_type_hint: Text | None = None
    all: bool = False


@post(
    "/oauth/revoke",
    status_code=200,
    security=requirements(ANONYMOUS, CLIENT_AUTHENTICATION),
    responses=oauth_error_responses(401, 503),
)
async def revoke(
    data: Annotated[RevokeForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> None:
    return None


@post("/things", status_code=201, security=BEARER, responses=problem_responses(401))
async def things(data: RevokeForm) -> None:
    return None


def app() -> Any:
    return build_app(
        service="example",
        title="Example",
        route_handlers=[
            Router("/", route_handlers=[revoke], exception_handlers=oauth_exception_handlers()),
            things,
        ],
        readiness={},
        checks_input=True,
        security_schemes={
            **security_schemes(BEARER_SCHEME, CLIENT_BASIC_SCHEME),
            "clientCredentials": client_credentials_scheme("/oauth/token", {"x:read": "Read"}),
        },
    )


async def test_the_document() -> None:
    async with AsyncTestClient(app=app()) as client:
        document = (await client.get("/schema/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes[BEARER_SCHEME] | {"description": ""} == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "",
    }
    assert schemes[CLIENT_BASIC_SCHEME]["scheme"] == "basic"
    assert schemes["clientCredentials"]["flows"]["clientCredentials"]["tokenUrl"] == "/oauth/token"

    oauth = document["paths"]["/oauth/revoke"]["post"]
    assert oauth["security"] == [{}, {CLIENT_BASIC_SCHEME: []}]
    assert set(oauth["responses"]) == {"200", "400", "401", "503"}
    error = oauth["responses"]["400"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/OAuthError"}
    assert "application/problem+json" in oauth["responses"]["503"]["content"]
    assert "application/x-www-form-urlencoded" in oauth["requestBody"]["content"]

    plain = document["paths"]["/things"]["post"]
    assert plain["security"] == [{BEARER_SCHEME: []}]
    assert set(plain["responses"]) == {"201", "400", "401", "422"}  # 400 and 422: always
    malformed = plain["responses"]["400"]["content"]["application/problem+json"]["schema"]
    assert malformed == {"$ref": "#/components/schemas/Problem"}
    invalid = plain["responses"]["422"]["content"]["application/problem+json"]["schema"]
    assert invalid == {"$ref": "#/components/schemas/ValidationProblem"}
    schemas = document["components"]["schemas"]
    assert schemas["ValidationProblem"]["required"] == sorted(
        ["type", "title", "status", "detail", "code", "errors"]
    )
    assert schemas["RevokeForm"]["additionalProperties"] is False
    assert "additionalProperties" not in schemas["Problem"]  # RFC 9457 extension members


async def test_refusals_in_each_shape() -> None:
    async with AsyncTestClient(app=app()) as client:
        oauth = await client.post(
            "/oauth/revoke",
            content="token=a%00b",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert oauth.status_code == 400
        assert oauth.json()["error"] == "invalid_request"
        assert oauth.headers["cache-control"] == "no-store"
        plain = await client.post("/things", json={"token": "a\u0000b"})
        assert plain.status_code == 422
        assert plain.json()["errors"] == [
            {"field": "token", "message": "must not contain control characters or lone surrogates"}
        ]
        # Read as JSON whatever the Content-Type says (so Litestar reads it), checked as JSON.
        for content_type in ("application/json", "text/plain", ""):
            headers = {"Content-Type": content_type} if content_type else {}
            for body, field in (
                (b'{"token": "a\\u0001b"}', "token"),
                (b'{"token": "ab", "all": 0}', "all"),
            ):
                refused = await client.post("/things", content=body, headers=headers)
                assert refused.status_code == 422, (content_type, body)
                assert refused.json()["errors"][0]["field"] == field
