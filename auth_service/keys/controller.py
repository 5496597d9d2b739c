from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get
from litestar.di import NamedDependency

from auth_service.clients.keys import ASSERTION_ALGORITHMS
from auth_service.config import Settings
from auth_service.keys.ring import KeyRing
from kit.openapi import problem_responses

# The scopes this platform's own services define (the todo API, account events, introspection).
SCOPES_SUPPORTED = ("tasks:read", "tasks:write", "events:read", "introspect")


class WellKnownController(Controller):
    path = "/.well-known"
    tags = ["keys"]

    @get("/jwks.json", responses=problem_responses(503))
    async def jwks(
        self, ring: NamedDependency[KeyRing], settings: NamedDependency[Settings]
    ) -> Response[dict[str, Any]]:
        # max-age never exceeds the time a next key is published before it signs.
        return Response(
            await ring.jwks(),
            headers={"Cache-Control": f"public, max-age={settings.jwks_max_age}"},
        )

    @get(
        ["/oauth-authorization-server", "/openid-configuration"],
        sync_to_thread=False,
        responses=problem_responses(),
    )
    def metadata(self, settings: NamedDependency[Settings]) -> Response[dict[str, Any]]:
        """RFC 8414 metadata (also at the OIDC discovery path): only what the server does."""
        issuer = settings.issuer
        client_auth = ["client_secret_basic", "private_key_jwt"]
        return Response(
            {
                "issuer": issuer,
                "jwks_uri": f"{issuer}/.well-known/jwks.json",
                "token_endpoint": f"{issuer}/oauth/token",
                "introspection_endpoint": f"{issuer}/oauth/introspect",
                "revocation_endpoint": f"{issuer}/oauth/revoke",
                "grant_types_supported": ["refresh_token", "client_credentials"],
                "response_types_supported": [],
                "token_endpoint_auth_methods_supported": ["none", *client_auth],
                "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
                "introspection_endpoint_auth_methods_supported": client_auth,
                "introspection_endpoint_auth_signing_alg_values_supported": list(
                    ASSERTION_ALGORITHMS
                ),
                "revocation_endpoint_auth_methods_supported": ["none", *client_auth],
                "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
                "scopes_supported": list(SCOPES_SUPPORTED),
                "access_token_signing_alg_values_supported": [settings.signing_alg],
            },
            headers={"Cache-Control": "public, max-age=3600"},
        )
