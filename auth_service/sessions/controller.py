"""Refresh rotation, logout and the user's own sessions (`/auth/...`)."""

from __future__ import annotations

import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency

from auth_service.config import Settings
from auth_service.sessions.schemas import RefreshRequest, SessionView
from auth_service.sessions.service import SessionService
from auth_service.sessions.store import INVALID, SessionInfo
from auth_service.sessions.tokens import MAX_TOKEN_LENGTH
from auth_service.tokens.bearer import AccessClaims
from auth_service.tokens.responses import (
    NO_STORE,
    REFRESH_COOKIE,
    cleared_refresh_cookie,
    cookie_mode,
    token_response,
)
from kit.openapi import BEARER, json_body_operation, problem_responses
from kit.problems import FieldError, ProblemError
from kit.text_input import PathText

NO_TOKEN = ProblemError(401, INVALID, "no refresh token was presented")


async def _presented_token(request: Request[Any, Any, Any], *, cookie: bool) -> str | None:
    """The refresh token of a request. In browser mode it is the HttpOnly cookie (the
    `X-Auth-Mode: cookie` header, which a cross-site form cannot send, is the CSRF defence);
    otherwise the JSON body — and a cookie sent without that header is ignored."""
    body = await request.body()
    if cookie:
        from_cookie = request.cookies.get(REFRESH_COOKIE)
        if from_cookie:
            return from_cookie
        if not body.strip():
            return None
    if not body.strip():
        raise ProblemError(400, "malformed_request", "a JSON object body is required")
    try:
        parsed = msgspec.json.decode(body, type=RefreshRequest)
    except msgspec.ValidationError as error:
        raise FieldError("refresh_token", str(error)) from None
    except msgspec.DecodeError:
        raise ProblemError(400, "malformed_request", "the body is not valid JSON") from None
    return parsed.refresh_token


# Documented as required: it is, but for a browser sending `X-Auth-Mode: cookie` and its cookie.
REFRESH_BODY = json_body_operation(
    RefreshRequest,
    "The refresh token; a browser sends none with `X-Auth-Mode: cookie` and its HttpOnly cookie.",
)


def _checked(token: str | None) -> str:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise NO_TOKEN if not token else ProblemError(401, INVALID, "refresh token not recognised")
    return token


def _when(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)


def _view(info: SessionInfo, current_sid: str) -> SessionView:
    return SessionView(
        id=info.id,
        created_at=_when(info.created_at),
        last_used_at=_when(info.last_used_at),
        expires_at=_when(info.expires_at),
        user_agent=info.user_agent,
        ip=info.ip,
        current=info.id == current_sid,
    )


class SessionController(Controller):
    path = "/auth"
    tags = ["sessions"]

    @post(
        "/refresh",
        status_code=200,
        operation_class=REFRESH_BODY,
        responses=problem_responses(400, 401, 413, 503),
    )
    async def refresh(
        self,
        request: Request[Any, Any, Any],
        session_service: NamedDependency[SessionService],
        settings: NamedDependency[Settings],
    ) -> Response[dict[str, Any]]:
        """Body `{"refresh_token"}`, or the cookie with `X-Auth-Mode: cookie`."""
        cookie = cookie_mode(request)
        token = _checked(await _presented_token(request, cookie=cookie))
        signed_in = await session_service.refresh(token)
        return token_response(signed_in, cookie=cookie, cookie_secure=settings.cookie_secure)

    @post(
        "/logout",
        status_code=204,
        operation_class=REFRESH_BODY,
        responses=problem_responses(400, 413, 503),
    )
    async def logout(
        self,
        request: Request[Any, Any, Any],
        session_service: NamedDependency[SessionService],
        settings: NamedDependency[Settings],
    ) -> Response[None]:
        """Ends the session of the token presented (body, or cookie in browser mode)."""
        cookie = cookie_mode(request)
        token = await _presented_token(request, cookie=cookie)
        if token and len(token) <= MAX_TOKEN_LENGTH:
            await session_service.logout(token)
        cookies = [cleared_refresh_cookie(settings.cookie_secure)] if cookie else []
        return Response(None, status_code=204, headers=NO_STORE, cookies=cookies)

    @post("/logout-all", status_code=204, security=BEARER, responses=problem_responses(401, 503))
    async def logout_all(
        self,
        claims: NamedDependency[AccessClaims],
        session_service: NamedDependency[SessionService],
    ) -> None:
        await session_service.logout_all(user_id=claims.sub)

    @get("/sessions", security=BEARER, responses=problem_responses(401, 503))
    async def list_sessions(
        self,
        claims: NamedDependency[AccessClaims],
        session_service: NamedDependency[SessionService],
    ) -> list[SessionView]:
        sessions = await session_service.list_sessions(user_id=claims.sub)
        return [_view(info, claims.sid) for info in sessions]

    @delete(
        "/sessions/{session_id:str}",
        status_code=204,
        security=BEARER,
        responses=problem_responses(401, 404, 503),
    )
    async def end_session(
        self,
        session_id: PathText,
        claims: NamedDependency[AccessClaims],
        session_service: NamedDependency[SessionService],
    ) -> None:
        if len(session_id) > 64:
            raise ProblemError(404, "not_found", "no such session")
        await session_service.end_session(user_id=claims.sub, session_id=session_id)
