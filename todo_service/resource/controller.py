from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get
from litestar.di import NamedDependency

from kit.openapi import problem_responses
from todo_service.config import Settings
from todo_service.tasks.controller import SCOPES


class ResourceMetadataController(Controller):
    path = "/.well-known"
    tags = ["discovery"]

    @get("/oauth-protected-resource", sync_to_thread=False, responses=problem_responses())
    def metadata(self, settings: NamedDependency[Settings]) -> Response[dict[str, Any]]:
        """RFC 9728: which authorization server issues tokens for this API, and its scopes.
        `resource` is the audience a token must carry (what a client asks for as
        `resource`, RFC 8707)."""
        return Response(
            {
                "resource": settings.audience[0],
                "authorization_servers": [settings.issuer],
                "scopes_supported": list(SCOPES),
                "bearer_methods_supported": ["header"],
            },
            headers={"Cache-Control": "public, max-age=3600"},
        )
