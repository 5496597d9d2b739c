"""RFC 9457 problem details: the one shape of every error response."""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("problems")

# The codes a bare HTTP status maps to when the framework (not our code) raised it.
_STATUS_CODES = {
    400: "malformed_request",
    401: "token_missing",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "malformed_request",
    429: "rate_limited",
}


class ProblemError(Exception):
    """An error the client caused or must hear about, with a stable machine-readable code."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


class FieldError(ProblemError):
    """422 with the field errors of the contract."""

    def __init__(self, field: str, message: str, code: str = "validation_error") -> None:
        super().__init__(
            422, code, message, extra={"errors": [{"field": field, "message": message}]}
        )
        self.field = field

    def __reduce__(self) -> tuple[type[FieldError], tuple[str, str, str]]:
        """Pickled as its arguments: a password refused in a hashing process reaches the
        service as the same 422."""
        return (FieldError, (self.field, self.detail, self.code))


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if extra:
        body.update(extra)
    return Response(
        content=body,
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


def _on_problem(_: Request[Any, Any, Any], exc: ProblemError) -> Response[dict[str, Any]]:
    return problem_response(exc.status, exc.code, exc.detail, headers=exc.headers, extra=exc.extra)


_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")
_CLIENT_GONE = "client disconnected prematurely"  # Litestar's words when the body never came
_BODY_ABSENT = "'data'"  # what the framework says when there is no body to decode at all


def _field_error(item: Mapping[str, Any]) -> dict[str, str]:
    key, message = item.get("key"), str(item.get("message", "invalid"))
    if key in (None, "", "data"):
        missing = _MISSING_FIELD.search(message)
        return {"field": missing.group(1) if missing else "body", "message": message}
    return {"field": str(key), "message": message}


def _on_validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    errors: Sequence[Any] = exc.extra if isinstance(exc.extra, list) else []
    items = [item for item in errors if isinstance(item, dict)]
    if any(str(item.get("message")) == _BODY_ABSENT for item in items):
        return problem_response(400, "malformed_request", "a JSON object body is required")
    fields = [_field_error(item) for item in items] or [
        {"field": "body", "message": "invalid request"}
    ]
    return problem_response(
        422, "validation_error", "the request is invalid", extra={"errors": fields}
    )


def _on_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if status >= 500 and exc.detail == _CLIENT_GONE:
        # The client hung up before sending its whole body: nobody will read this answer.
        log.info("client_disconnected")
        return problem_response(400, "malformed_request", "the request body was not completed")
    if status >= 500:
        log.error("http_exception", status=status, error=type(exc).__name__)
        return problem_response(status, "internal_error", "the service could not answer")
    code = _STATUS_CODES.get(status, "malformed_request")
    detail = {
        400: "the request is malformed",
        404: "not found",
        405: "method not allowed",
        413: "the request body is too large",
    }.get(status, HTTPStatus(status).phrase.lower())
    return problem_response(status, code, detail, headers=exc.headers or None)


def where(exc: BaseException) -> list[str]:
    """The frames an exception passed through, without values: driver errors carry SQL and
    parameters in their messages, and locals can hold secrets, so neither is ever logged."""
    return [
        f"{frame.filename}:{frame.lineno} {frame.name}"
        for frame in traceback.extract_tb(exc.__traceback__)
    ][-8:]


def unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.error("unhandled_exception", error=type(exc).__name__, frames=where(exc))
    return problem_response(500, "internal_error", "the service could not answer")


def exception_handlers() -> ExceptionHandlersMap:
    return {
        ProblemError: _on_problem,
        ValidationException: _on_validation,
        NotFoundException: _on_http,
        NotAuthorizedException: _on_http,
        PermissionDeniedException: _on_http,
        HTTPException: _on_http,
        Exception: unexpected,
    }


# RFC 6749 §5.2: what an OAuth route answers where every other route answers a problem.
OAUTH_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error_response(
    error: str,
    description: str,
    status: int = 400,
    *,
    headers: Mapping[str, str] | None = None,
) -> Response[dict[str, str]]:
    return Response(
        {"error": error, "error_description": description},
        status_code=status,
        headers={**OAUTH_NO_STORE, **(headers or {})},
        media_type="application/json",
    )


def _oauth_error(status: int, detail: str, headers: Mapping[str, str] | None) -> Response[Any]:
    if status >= 500:
        return problem_response(status, "internal_error", "the service could not answer")
    if status == 401:
        return oauth_error_response("invalid_client", detail, 401, headers=headers)
    if status in (413, 429):
        # Not a malformed request: the client may retry (smaller, or later) as it is told.
        return oauth_error_response("invalid_request", detail, status, headers=headers)
    return oauth_error_response("invalid_request", detail, 400, headers=headers)


def _on_oauth_problem(request: Request[Any, Any, Any], exc: ProblemError) -> Response[Any]:
    if exc.status >= 500:
        return _on_problem(request, exc)
    return _oauth_error(exc.status, exc.detail, exc.headers)


def _on_oauth_validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    return _oauth_error(400, "the request is malformed", None)


def _on_oauth_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if exc.status_code >= 500 or exc.status_code in (404, 405):
        return _on_http(request, exc)
    return _oauth_error(exc.status_code, str(exc.detail), exc.headers)


def oauth_exception_handlers() -> ExceptionHandlersMap:
    """For the routes under `/oauth/`: the errors kit raises everywhere (a refused character
    from kit.text_input, a body too large, a malformed request) in RFC 6749 §5.2's shape
    `{"error", "error_description"}` instead of a problem. Set on the OAuth router/controller:
    route-level handlers win over the app's."""
    return {
        ProblemError: _on_oauth_problem,
        ValidationException: _on_oauth_validation,
        HTTPException: _on_oauth_http,
    }


def dependency_down(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.warning("dependency_unavailable", error=type(exc).__name__)
    return problem_response(
        503,
        "upstream_unavailable",
        "a storage dependency is unavailable, try again shortly",
        headers={"Retry-After": "2"},
    )


def dependency_down_handlers(*exception_types: type[Exception]) -> ExceptionHandlersMap:
    """503 `upstream_unavailable` for the exceptions a service's storage raises when it is down."""
    return {exc_type: dependency_down for exc_type in exception_types}
