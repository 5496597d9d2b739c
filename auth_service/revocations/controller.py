from __future__ import annotations

import math
from typing import Annotated, Any

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from auth_service.revocations.log import RevocationLog
from kit.openapi import problem_responses
from kit.problems import FieldError


def _cursor(since: str) -> float:
    try:
        value = float(since)
    except ValueError:
        raise FieldError("since", "a cursor from an earlier answer's `next`") from None
    if not math.isfinite(value) or value < 0:
        raise FieldError("since", "a cursor from an earlier answer's `next`")
    return value


class RevocationController(Controller):
    """Served to verifiers on the internal network; the gateway never forwards /internal/."""

    path = "/internal/revocations"
    tags = ["revocations"]

    @get("/", responses=problem_responses(503))
    async def changes(
        self,
        revocations: NamedDependency[RevocationLog],
        since: Annotated[str, QueryParameter(max_length=32, pattern=r"^[0-9]+(\.[0-9]+)?$")] = "0",
    ) -> Response[dict[str, Any]]:
        """Entries written since the cursor (everything live with `since=0`), and the next
        cursor: `{"items": [{"type": "session", "sid", "until"} | {"type": "subject", "sub",
        "before", "until"}], "next"}`."""
        changes = await revocations.changes(_cursor(since[:32]))
        return Response(
            {"items": changes.items, "next": changes.next},
            headers={"Cache-Control": "no-store"},
        )
