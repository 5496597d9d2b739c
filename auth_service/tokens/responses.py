"""The token response of the contract, in body mode or browser (cookie) mode."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.datastructures import Cookie

from auth_service.sessions.service import SignedIn
from auth_service.sessions.store import IssuedRefresh

REFRESH_COOKIE = "refresh_token"
COOKIE_PATH = "/auth"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def cookie_mode(request: Request[Any, Any, Any]) -> bool:
    """Browser mode: the client asked for the refresh token as an HttpOnly cookie."""
    return request.headers.get("x-auth-mode", "").strip().lower() == "cookie"


def refresh_expires_in(refresh: IssuedRefresh) -> int:
    """Seconds the refresh token has left, counted from the session's last use (now)."""
    return max(0, int(refresh.expires_at - refresh.session.last_used_at))


def token_response(
    signed_in: SignedIn, *, cookie: bool, cookie_secure: bool, status_code: int = 200
) -> Response[dict[str, Any]]:
    """The contract's token response (login, register, refresh)."""
    access, refresh = signed_in.access, signed_in.refresh
    body: dict[str, Any] = {
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": access.expires_in,
        "refresh_token": refresh.refresh_token,
        "refresh_token_expires_in": refresh_expires_in(refresh),
        "user": {"id": refresh.session.user_id, "email": signed_in.email},
    }
    cookies: list[Cookie] = []
    if cookie:
        del body["refresh_token"]
        cookies.append(
            refresh_cookie(refresh.refresh_token, refresh_expires_in(refresh), cookie_secure)
        )
    return Response(body, status_code=status_code, headers=NO_STORE, cookies=cookies)


def refresh_cookie(value: str, max_age: int, secure: bool) -> Cookie:
    return Cookie(
        key=REFRESH_COOKIE,
        value=value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        secure=secure,
        samesite="strict",
    )


def cleared_refresh_cookie(secure: bool) -> Cookie:
    return refresh_cookie("", 0, secure)
