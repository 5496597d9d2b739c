"""`/admin/...`: thin handlers over AdminService, ClientRegistry and the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, delete, get, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, QueryParameter

from auth_service.admin.guard import admin_claims
from auth_service.admin.schemas import ClientChange, ClientCreate, RolesUpdate, SecretRotation
from auth_service.admin.service import AdminService
from auth_service.audit.log import AuditLog
from auth_service.clients.registry import ClientRefused, ClientRegistry
from auth_service.tokens.bearer import AccessClaims
from kit.openapi import BEARER, problem_responses
from kit.problems import FieldError, ProblemError
from kit.text_input import ONE_LINE, PathText

Limit = Annotated[int, QueryParameter(ge=1, le=200)]
Cursor = Annotated[str | None, QueryParameter(max_length=320, pattern=ONE_LINE)]
ADMIN = {"admin": Provide(admin_claims)}


def _page(items: list[dict[str, Any]], following: str | None) -> dict[str, Any]:
    return {"items": items, "next": following}


class AdminUsersController(Controller):
    path = "/admin"
    tags = ["admin"]
    dependencies = ADMIN

    @get("/users", security=BEARER, responses=problem_responses(401, 403, 503))
    async def users(
        self,
        admin: NamedDependency[AccessClaims],
        administration: NamedDependency[AdminService],
        q: Annotated[str, QueryParameter(max_length=320, pattern=ONE_LINE)] = "",
        after: Cursor = None,
        limit: Limit = 50,
    ) -> dict[str, Any]:
        """Users by email prefix or id, in email order: `{"items", "next"}`."""
        return _page(*await administration.users(q=q, after=after, limit=limit))

    @get("/users/{user_id:str}", security=BEARER, responses=problem_responses(401, 403, 404, 503))
    async def user(
        self,
        user_id: PathText,
        admin: NamedDependency[AccessClaims],
        administration: NamedDependency[AdminService],
    ) -> dict[str, Any]:
        return await administration.user(user_id)

    @post(
        "/users/{user_id:str}/disable",
        status_code=204,
        security=BEARER,
        responses=problem_responses(401, 403, 404, 503),
    )
    async def disable(
        self,
        user_id: PathText,
        admin: NamedDependency[AccessClaims],
        administration: NamedDependency[AdminService],
    ) -> None:
        """Disables the account and ends every session (its access tokens too, within
        seconds at every verifier)."""
        await administration.set_disabled(user_id, True, actor=admin.sub)

    @post(
        "/users/{user_id:str}/enable",
        status_code=204,
        security=BEARER,
        responses=problem_responses(401, 403, 404, 503),
    )
    async def enable(
        self,
        user_id: PathText,
        admin: NamedDependency[AccessClaims],
        administration: NamedDependency[AdminService],
    ) -> None:
        await administration.set_disabled(user_id, False, actor=admin.sub)

    @delete(
        "/users/{user_id:str}",
        status_code=204,
        security=BEARER,
        responses=problem_responses(401, 403, 404, 503),
    )
    async def delete_user(
        self,
        user_id: PathText,
        admin: NamedDependency[AccessClaims],
        administration: NamedDependency[AdminService],
    ) -> None:
        await administration.delete(user_id, actor=admin.sub)

    @delete(
        "/users/{user_id:str}/sessions",
        status_code=204,
        security=BEARER,
        responses=problem_responses(401, 403, 404, 503),
    )
    async def end_sessions(
        self,
        user_id: PathText,
        admin: NamedDependency[AccessClaims],
        administration: NamedDependency[AdminService],
    ) -> None:
        await administration.end_sessions(user_id, actor=admin.sub)

    @delete(
        "/users/{user_id:str}/mfa",
        status_code=204,
        security=BEARER,
        responses=problem_responses(401, 403, 404, 503),
    )
    async def reset_factors(
        self,
        user_id: PathText,
        admin: NamedDependency[AccessClaims],
        administration: NamedDependency[AdminService],
    ) -> None:
        await administration.reset_factors(user_id, actor=admin.sub)

    @put(
        "/users/{user_id:str}/roles",
        security=BEARER,
        responses=problem_responses(401, 403, 404, 413, 503),
    )
    async def set_roles(
        self,
        user_id: PathText,
        admin: NamedDependency[AccessClaims],
        administration: NamedDependency[AdminService],
        data: JSONBody[RolesUpdate],
    ) -> dict[str, Any]:
        """Sets the roles; the user's sessions end, so every later token carries them."""
        return await administration.set_roles(user_id, data.roles, actor=admin.sub)

    @get("/audit", security=BEARER, responses=problem_responses(401, 403, 503))
    async def audit_log(
        self,
        admin: NamedDependency[AccessClaims],
        audit: NamedDependency[AuditLog],
        user_id: Annotated[str | None, QueryParameter(max_length=64, pattern=ONE_LINE)] = None,
        type: Annotated[str | None, QueryParameter(max_length=64, pattern=ONE_LINE)] = None,
        after: Cursor = None,
        limit: Limit = 50,
    ) -> dict[str, Any]:
        """The audit log, newest first: `{"items", "next"}`."""
        items, following = await audit.page(
            subject=user_id, types=[type] if type else [], after=after, limit=limit
        )
        return _page(items, following)


def _refused(error: ClientRefused) -> ProblemError:
    if error.missing:
        return ProblemError(404, "not_found", "no such client")
    if error.bad_argument:
        return FieldError("client", str(error))
    return ProblemError(409, "client_exists", str(error))


class AdminClientsController(Controller):
    path = "/admin/clients"
    tags = ["admin"]
    dependencies = ADMIN

    @get("/", security=BEARER, responses=problem_responses(401, 403, 503))
    async def list_clients(
        self, admin: NamedDependency[AccessClaims], registry: NamedDependency[ClientRegistry]
    ) -> dict[str, Any]:
        return _page([view.as_json() for view in await registry.list()], None)

    @post(
        "/", status_code=201, security=BEARER, responses=problem_responses(401, 403, 409, 413, 503)
    )
    async def create_client(
        self,
        admin: NamedDependency[AccessClaims],
        registry: NamedDependency[ClientRegistry],
        data: JSONBody[ClientCreate],
    ) -> Response[dict[str, Any]]:
        """As `clients create`; the secret, when asked for, is in this answer only."""
        try:
            view, secret = await registry.create(
                data.client_id,
                scopes=data.scopes,
                audiences=data.audiences,
                secret=data.secret,
                jwks=data.jwks,
                jwks_uri=data.jwks_uri,
                name=data.name,
                actor=admin.sub,
            )
        except ClientRefused as error:
            raise _refused(error) from None
        body = view.as_json() | ({"client_secret": secret} if secret else {})
        return Response(body, status_code=201, headers={"Cache-Control": "no-store"})

    @get("/{client_id:str}", security=BEARER, responses=problem_responses(401, 403, 404, 503))
    async def show_client(
        self,
        client_id: PathText,
        admin: NamedDependency[AccessClaims],
        registry: NamedDependency[ClientRegistry],
    ) -> dict[str, Any]:
        try:
            return (await registry.get(client_id[:64])).as_json()
        except ClientRefused as error:
            raise _refused(error) from None

    @patch(
        "/{client_id:str}", security=BEARER, responses=problem_responses(401, 403, 404, 413, 503)
    )
    async def change_client(
        self,
        client_id: PathText,
        admin: NamedDependency[AccessClaims],
        registry: NamedDependency[ClientRegistry],
        data: JSONBody[ClientChange],
    ) -> dict[str, Any]:
        try:
            view = await registry.change(
                client_id[:64],
                disabled=data.disabled,
                scopes=data.scopes,
                audiences=data.audiences,
                name=data.name,
                actor=admin.sub,
            )
        except ClientRefused as error:
            raise _refused(error) from None
        return view.as_json()

    @delete(
        "/{client_id:str}",
        status_code=204,
        security=BEARER,
        responses=problem_responses(401, 403, 404, 503),
    )
    async def delete_client(
        self,
        client_id: PathText,
        admin: NamedDependency[AccessClaims],
        registry: NamedDependency[ClientRegistry],
    ) -> None:
        try:
            await registry.delete(client_id[:64], actor=admin.sub)
        except ClientRefused as error:
            raise _refused(error) from None

    @post(
        "/{client_id:str}/secrets",
        status_code=201,
        security=BEARER,
        responses=problem_responses(401, 403, 404, 413, 503),
    )
    async def rotate_secret(
        self,
        client_id: PathText,
        admin: NamedDependency[AccessClaims],
        registry: NamedDependency[ClientRegistry],
        data: JSONBody[SecretRotation],
    ) -> Response[dict[str, Any]]:
        """A new secret (shown once); the previous ones keep working for `overlap` seconds
        (body `{"overlap": 86400}` by default, `{}` takes it)."""
        overlap = data.overlap
        try:
            secret = await registry.rotate_secret(client_id[:64], overlap=overlap, actor=admin.sub)
        except ClientRefused as error:
            raise _refused(error) from None
        return Response(
            {"client_id": client_id, "client_secret": secret},
            status_code=201,
            headers={"Cache-Control": "no-store"},
        )
