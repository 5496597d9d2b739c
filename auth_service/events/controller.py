from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from auth_service.events.outbox import Outbox
from auth_service.tokens.bearer import bearer_claims_any
from kit.openapi import BEARER, problem_responses
from kit.problems import FieldError, ProblemError
from token_verifier import InsufficientScope, TokenVerifier, require_scope

EVENTS_SCOPE = "events:read"


class EventsController(Controller):
    """The account-events feed for internal services (the gateway never forwards /internal/)."""

    path = "/internal/events"
    tags = ["events"]

    @get("/", security=BEARER, responses=problem_responses(401, 403, 503))
    async def events(
        self,
        request: Request[Any, Any, Any],
        outbox: NamedDependency[Outbox],
        verifier: NamedDependency[TokenVerifier],
        after: Annotated[str, QueryParameter(max_length=20, pattern=r"^[0-9]+$")] = "0",
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        """Events after the cursor, in order: `{"events": [{"id", "type", "subject", "at",
        "data"}], "next"}`. A client token holding `events:read`; people's tokens never."""
        claims = await bearer_claims_any(request, verifier)
        if not claims.is_client:
            raise ProblemError(403, "forbidden", "the events feed is for internal services")
        try:
            require_scope(claims, EVENTS_SCOPE)
        except InsufficientScope as short:
            raise ProblemError(
                403,
                short.code,
                short.detail,
                headers={"WWW-Authenticate": short.www_authenticate()},
            ) from None
        if not after.isdigit():
            raise FieldError("after", "a cursor from an earlier answer's `next`")
        events, following = await outbox.page(after=int(after), limit=limit)
        return {"events": events, "next": str(following)}
