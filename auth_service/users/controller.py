from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from auth_service.config import Settings
from auth_service.sessions.service import ClientInfo
from auth_service.tokens.bearer import AccessClaims
from auth_service.tokens.responses import cookie_mode, token_response
from auth_service.users.schemas import AccountDeletion, Credentials, Me, PasswordChange
from auth_service.users.service import AccountService
from kit.clients import client_info
from kit.openapi import BEARER, problem_responses


class AccountController(Controller):
    path = "/auth"
    tags = ["accounts"]

    @post("/register", status_code=201, responses=problem_responses(400, 409, 413, 503))
    async def register(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[Credentials],
        accounts: NamedDependency[AccountService],
        settings: NamedDependency[Settings],
    ) -> Response[dict[str, Any]]:
        signed_in = await accounts.register(data.email, data.password, _client(request))
        return token_response(
            signed_in,
            cookie=cookie_mode(request),
            cookie_secure=settings.cookie_secure,
            status_code=201,
        )

    @post("/login", status_code=200, responses=problem_responses(400, 401, 413, 429, 503))
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[Credentials],
        accounts: NamedDependency[AccountService],
        settings: NamedDependency[Settings],
    ) -> Response[dict[str, Any]]:
        signed_in = await accounts.login(data.email, data.password, _client(request))
        return token_response(
            signed_in, cookie=cookie_mode(request), cookie_secure=settings.cookie_secure
        )

    @get("/me", security=BEARER, responses=problem_responses(401, 503))
    async def me(
        self, claims: NamedDependency[AccessClaims], accounts: NamedDependency[AccountService]
    ) -> Me:
        user = await accounts.get(claims.sub)
        return Me(id=str(user.id), email=user.email, created_at=user.created_at)

    @post(
        "/password",
        status_code=204,
        security=BEARER,
        responses=problem_responses(400, 401, 413, 503),
    )
    async def change_password(
        self,
        claims: NamedDependency[AccessClaims],
        accounts: NamedDependency[AccountService],
        data: JSONBody[PasswordChange],
    ) -> None:
        await accounts.change_password(
            claims.sub, claims.sid, data.current_password, data.new_password
        )

    @delete("/me", status_code=204, security=BEARER, responses=problem_responses(401, 413, 503))
    async def delete_me(
        self,
        claims: NamedDependency[AccessClaims],
        accounts: NamedDependency[AccountService],
        data: JSONBody[AccountDeletion],
    ) -> None:
        """Closes the account: the password again; its sessions end, and its data in every
        service that consumes account events (the todo service's tasks) follows."""
        await accounts.delete_own(claims.sub, data.current_password)


def _client(request: Request[Any, Any, Any]) -> ClientInfo:
    user_agent, ip = client_info(request)
    return ClientInfo(user_agent=user_agent, ip=ip)
