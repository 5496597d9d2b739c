from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from auth_service.audit.log import AuditLog
from auth_service.tokens.bearer import AccessClaims
from kit.openapi import BEARER, problem_responses
from kit.text_input import ONE_LINE


class ActivityController(Controller):
    path = "/auth/activity"
    tags = ["accounts"]

    @get("/", security=BEARER, responses=problem_responses(401, 503))
    async def activity(
        self,
        claims: NamedDependency[AccessClaims],
        audit: NamedDependency[AuditLog],
        after: Annotated[str | None, QueryParameter(max_length=64, pattern=ONE_LINE)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> dict[str, Any]:
        """The caller's own security events, newest first: `{"items", "next"}`."""
        items, following = await audit.page(subject=claims.sub, after=after, limit=limit)
        return {"items": items, "next": following}
