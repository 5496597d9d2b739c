"""What each route's OpenAPI entry says about its errors and its security, from one place.

A route lists the error statuses it can answer, `responses=problem_responses(401, 404, 503)`,
and gets each with the RFC 9457 problem schema under `application/problem+json` (422 with the
field `errors`); a route under `/oauth/` uses `oauth_error_responses(400, 401)` instead (RFC 6749
§5.2's `{"error", "error_description"}` as `application/json`). The security schemes are
components of the document (`build_app(security_schemes=...)`), named by the requirements
routes carry: `security=BEARER` for an access token, `security=CLIENT_AUTHENTICATION` for an
OAuth client's own credentials (HTTP basic: `client_secret_basic`; a `private_key_jwt` client
sends its assertion in the form body, which the route's request schema documents).

Statuses every route of a service built with `checks_input` can answer are added here,
so no route forgets them: 422, because kit.text_input refuses a control character in any
header or query parameter, on any route; and 400 `malformed_request`, for a request that cannot
be parsed — which Litestar documents by itself on every route with a parameter, with its own
schema and `application/json`, unless the route's `responses=` replace it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OAuthFlow,
    OAuthFlows,
    Operation,
    SecurityRequirement,
    SecurityScheme,
)
from litestar.openapi.spec import Schema as OpenAPISchema
from litestar.typing import FieldDefinition

from kit.problems import PROBLEM_JSON

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

BEARER_SCHEME = "bearerAuth"
CLIENT_BASIC_SCHEME = "clientSecretBasic"
BEARER: list[SecurityRequirement] = [{BEARER_SCHEME: []}]
CLIENT_AUTHENTICATION: list[SecurityRequirement] = [{CLIENT_BASIC_SCHEME: []}]
# No credentials at all, as one of several alternatives: `requirements(ANONYMOUS,
# CLIENT_AUTHENTICATION)` for a route a public client calls with only its `client_id` (RFC 7009
# revocation by the first-party client, the refresh_token grant).
ANONYMOUS: list[SecurityRequirement] = [{}]
ALWAYS = (400, 422)

# The codes of the contract's error table a status stands for: said in each description.
_CODES = {
    400: "malformed_request, link_invalid",
    401: "invalid_credentials, token_missing, token_invalid, token_expired, token_revoked, "
    "refresh_token_invalid, refresh_token_expired, refresh_token_reused, session_revoked",
    403: "forbidden, insufficient_scope, email_unverified, account_disabled",
    404: "not_found",
    409: "email_taken",
    413: "payload_too_large",
    422: "validation_error, weak_password",
    429: "rate_limited (with Retry-After)",
    503: "upstream_unavailable, overloaded (with Retry-After)",
}


class Problem(msgspec.Struct):
    """RFC 9457 problem details, as every error of the services is written."""

    type: str
    title: str
    status: int
    detail: str
    code: str


class FieldProblem(msgspec.Struct):
    field: str
    message: str


class ValidationProblem(Problem):
    errors: list[FieldProblem]


class OAuthError(msgspec.Struct):
    """RFC 6749 §5.2: the error body of the OAuth routes."""

    error: str
    error_description: str


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """`responses=` of a route answering `statuses` (and ALWAYS) with problem details."""
    return {
        status: ResponseSpec(
            data_container=ValidationProblem if status == 422 else Problem,
            media_type=PROBLEM_JSON,
            description=f"{HTTPStatus(status).phrase}: {_CODES.get(status, 'see detail')}",
            generate_examples=False,
        )
        for status in sorted({*statuses, *ALWAYS})
    }


def oauth_error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """`responses=` of an OAuth route (RFC 6749 §5.2 errors; kit.problems'
    oauth_exception_handlers turn kit's own refusals into this shape: 400 `invalid_request`,
    so 400 is always included and 422 never). Statuses at or over 500 stay problems, as
    everywhere. For example `/oauth/token`: `oauth_error_responses(400, 401, 413, 503)`."""
    responses = {
        status: ResponseSpec(
            data_container=OAuthError,
            media_type="application/json",
            description=f"{HTTPStatus(status).phrase}: RFC 6749 error",
            generate_examples=False,
        )
        for status in sorted({400, *statuses})
        if status < 500
    }
    server_errors = [status for status in statuses if status >= 500]
    problems = problem_responses(*server_errors)
    responses.update({status: problems[status] for status in server_errors})
    return responses


def bearer_scheme() -> SecurityScheme:
    return SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT",
        description="An access token of the auth service (RFC 9068 JWT), as "
        "`Authorization: Bearer <token>`.",
    )


def client_secret_basic_scheme() -> SecurityScheme:
    return SecurityScheme(
        type="http",
        scheme="basic",
        description="OAuth client authentication `client_secret_basic` (RFC 6749 §2.3.1): the "
        "client id and secret, form-URL-encoded, as HTTP basic credentials.",
    )


def client_credentials_scheme(token_url: str, scopes: Mapping[str, str]) -> SecurityScheme:
    """For a resource server's document: tokens a client obtains with client credentials."""
    return SecurityScheme(
        type="oauth2",
        flows=OAuthFlows(client_credentials=OAuthFlow(token_url=token_url, scopes=dict(scopes))),
        description="An access token obtained with `grant_type=client_credentials`.",
    )


def security_schemes(*names: str) -> dict[str, SecurityScheme]:
    """The named schemes of this module, for `build_app(security_schemes=...)`."""
    known = {BEARER_SCHEME: bearer_scheme, CLIENT_BASIC_SCHEME: client_secret_basic_scheme}
    return {name: known[name]() for name in names}


def requirements(*groups: Sequence[SecurityRequirement]) -> list[SecurityRequirement]:
    """Alternatives: `requirements(BEARER, CLIENT_AUTHENTICATION)` accepts either."""
    return [requirement for group in groups for requirement in group]


class ClosedStructSchemaPlugin(StructSchemaPlugin):
    """Every msgspec Struct is documented with `additionalProperties: false`. True of every
    response (a Struct encodes exactly its fields); of a request body it is what a client should
    send. The task bodies refuse other members (forbid_unknown_fields); the auth bodies ignore
    them, being liberal in what they accept — but what an ignored member holds still passes
    kit.text_input, so documenting it as allowed would promise what is not kept."""

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> OpenAPISchema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        # A problem may carry extension members (RFC 9457 §3.2), such as readiness's `failing`.
        if not field_definition.is_subclass_of(Problem):
            schema.additional_properties = False
        return schema


def _without_body_on_204(operation: dict[str, Any]) -> dict[str, Any]:
    no_content = operation.get("responses", {}).get("204")
    if isinstance(no_content, dict):
        no_content.pop("content", None)
    return operation


def json_body_operation(struct: type[msgspec.Struct], description: str) -> type[Operation]:
    """`operation_class=` of a route that reads its JSON body itself (it also accepts a cookie
    instead): documents the body `struct` as the framework would document `data: struct`."""
    return _body_operation(struct, description, "application/json")


def form_body_operation(schema: dict[str, Any], description: str) -> type[Operation]:
    """`operation_class=` of an OAuth route, which reads its form itself (each parameter at
    most once, RFC 6749 §3.2): documents the form by the JSON schema given (OAuth's forms say
    which fields go together, which a Struct cannot)."""
    return _documented_body(schema, description, "application/x-www-form-urlencoded")


def _body_operation(
    struct: type[msgspec.Struct], description: str, media_type: str
) -> type[Operation]:
    generated = msgspec.json.schema(struct)
    schema = generated.get("$defs", {}).get(struct.__name__, generated)
    if "$ref" in msgspec.json.encode(schema).decode():
        raise TypeError(f"{struct.__name__} must be flat to be documented inline")
    schema = {**schema, "additionalProperties": False}  # as ClosedStructSchemaPlugin says
    return _documented_body(schema, description, media_type)


def _documented_body(schema: dict[str, Any], description: str, media_type: str) -> type[Operation]:
    body = {
        "required": True,
        "description": description,
        "content": {media_type: {"schema": schema}},
    }

    class JsonBodyOperation(Operation):
        request_body_schema: ClassVar[dict[str, Any]] = body

        def to_schema(self) -> dict[str, Any]:
            # A handler answering 204 through a Response object is documented with a body.
            schema = _without_body_on_204(super().to_schema())
            return {**schema, "requestBody": self.request_body_schema}

    return JsonBodyOperation
