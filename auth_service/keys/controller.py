from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get
from litestar.di import NamedDependency

from auth_service.config import Settings
from auth_service.keys.ring import KeyRing
from kit.openapi import problem_responses


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

    @get("/openid-configuration", sync_to_thread=False, responses=problem_responses())
    def openid_configuration(self, settings: NamedDependency[Settings]) -> Response[dict[str, Any]]:
        issuer = settings.issuer
        return Response(
            {
                "issuer": issuer,
                "jwks_uri": f"{issuer}/.well-known/jwks.json",
                "token_endpoint": f"{issuer}/oauth/token",
                "grant_types_supported": ["refresh_token"],
                "token_endpoint_auth_methods_supported": ["none"],
                "response_types_supported": [],
                "id_token_signing_alg_values_supported": [settings.signing_alg],
                "access_token_signing_alg_values_supported": [settings.signing_alg],
                "revocation_endpoint": f"{issuer}/auth/logout",
                "userinfo_endpoint": f"{issuer}/auth/me",
            },
            headers={"Cache-Control": "public, max-age=3600"},
        )
