"""The rules of the OAuth endpoints: which grant gives what, what introspection may reveal to
whom, and what revocation ends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter

from auth_service.clients.authentication import (
    AuthenticatedClient,
    ClientAuthenticator,
    InvalidClient,
    MalformedClientAuthentication,
)
from auth_service.oauth.forms import OAuthError
from auth_service.sessions.service import SessionService
from auth_service.sessions.tokens import MAX_TOKEN_LENGTH
from auth_service.tokens.issuer import AccessTokenIssuer
from auth_service.tokens.responses import refresh_expires_in
from kit.problems import ProblemError
from token_verifier import TokenRejected, TokenVerifier, VerifiedClaims

INTROSPECT_SCOPE = "introspect"
INACTIVE: dict[str, Any] = {"active": False}
GRANTS = Counter(
    "auth_oauth_grants_total", "Token endpoint answers by grant and result", ["grant", "result"]
)


def _invalid_client(error: InvalidClient) -> OAuthError:
    headers = {"WWW-Authenticate": 'Basic realm="oauth"'} if error.basic else {}
    return OAuthError("invalid_client", error.description, status=401, headers=headers)


class OAuthService:
    def __init__(
        self,
        clients: ClientAuthenticator,
        issuer: AccessTokenIssuer,
        sessions: SessionService,
        verifier: TokenVerifier,
        *,
        first_party_client_id: str,
        issuer_url: str,
        access_token_ttl: int,
    ) -> None:
        self._clients = clients
        self._issuer = issuer
        self._sessions = sessions
        self._verifier = verifier  # any audience this server issues for
        self._first_party = first_party_client_id
        self._issuer_url = issuer_url
        self._ttl = access_token_ttl

    async def _client(
        self, authorization: str | None, form: Mapping[str, str]
    ) -> AuthenticatedClient | None:
        try:
            return await self._clients.authenticate(authorization=authorization, form=form)
        except InvalidClient as error:
            raise _invalid_client(error) from None
        except MalformedClientAuthentication as error:
            raise OAuthError("invalid_request", str(error)) from None

    def _public_client(self, form: Mapping[str, str]) -> None:
        """No credentials: only the first-party public client may call, naming itself."""
        if form.get("client_id", self._first_party) != self._first_party:
            raise OAuthError("invalid_client", "client authentication required", status=401)

    # --- token -------------------------------------------------------------------------------

    async def token(self, authorization: str | None, form: Mapping[str, str]) -> dict[str, Any]:
        grant = form.get("grant_type")
        if not grant:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant not in ("refresh_token", "client_credentials"):
            raise OAuthError(
                "unsupported_grant_type", "supported: refresh_token, client_credentials"
            )
        client = await self._client(authorization, form)
        try:
            if grant == "client_credentials":
                body = await self._client_credentials(client, form)
            else:
                body = await self._refresh(client, form)
        except OAuthError as error:
            GRANTS.labels(grant, error.error).inc()
            raise
        GRANTS.labels(grant, "ok").inc()
        return body

    async def _client_credentials(
        self, client: AuthenticatedClient | None, form: Mapping[str, str]
    ) -> dict[str, Any]:
        if client is None:
            raise OAuthError("invalid_client", "client authentication required", status=401)
        requested = form.get("scope")
        if requested is None:
            scopes = client.scopes
        else:
            wanted = tuple(dict.fromkeys(requested.split()))
            if not wanted or any(scope not in client.scopes for scope in wanted):
                raise OAuthError("invalid_scope", "a requested scope is not the client's")
            scopes = wanted
        resource = form.get("resource")
        if resource is None:
            audience = client.audiences[0]
        elif resource in client.audiences:
            audience = resource
        else:
            raise OAuthError("invalid_target", "the resource is not one of the client's audiences")
        access = await self._issuer.issue_for_client(
            client_id=client.id, scopes=scopes, audience=audience
        )
        return {
            "access_token": access.token,
            "token_type": "Bearer",
            "expires_in": access.expires_in,
            "scope": " ".join(scopes),
        }

    async def _refresh(
        self, client: AuthenticatedClient | None, form: Mapping[str, str]
    ) -> dict[str, Any]:
        if client is not None:  # people's refresh tokens belong to the first-party client
            raise OAuthError("invalid_grant", "the refresh token was not issued to this client")
        self._public_client(form)
        token = form.get("refresh_token", "")
        if not token:
            raise OAuthError("invalid_request", "refresh_token is required")
        if len(token) > MAX_TOKEN_LENGTH:
            raise OAuthError("invalid_grant", "refresh token not recognised")
        try:
            signed_in = await self._sessions.refresh(token)
        except ProblemError as problem:
            if problem.status != 401:
                raise
            raise OAuthError("invalid_grant", problem.detail) from None
        refresh = signed_in.refresh
        return {
            "access_token": signed_in.access.token,
            "token_type": "Bearer",
            "expires_in": signed_in.access.expires_in,
            "refresh_token": refresh.refresh_token,
            "refresh_token_expires_in": refresh_expires_in(refresh),
        }

    # --- introspection -----------------------------------------------------------------------

    async def introspect(
        self, authorization: str | None, form: Mapping[str, str]
    ) -> dict[str, Any]:
        client = await self._client(authorization, form)
        if client is None:
            raise OAuthError("invalid_client", "client authentication required", status=401)
        if INTROSPECT_SCOPE not in client.scopes:
            raise OAuthError(
                "insufficient_scope", "this client may not introspect tokens", status=403
            )
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is required")
        if form.get("token_type_hint") == "refresh_token":
            state = await self._refresh_state(token) or await self._access_state(token, client)
        else:
            state = await self._access_state(token, client) or await self._refresh_state(token)
        return state or INACTIVE

    async def _claims(self, token: str) -> VerifiedClaims | None:
        if token.count(".") != 2:
            return None
        try:
            return await self._verifier.verify(token)
        except TokenRejected:
            return None

    async def _access_state(self, token: str, client: AuthenticatedClient) -> dict[str, Any]:
        claims = await self._claims(token)
        if claims is None:
            return {}
        # A resource server learns only of tokens meant for it (and a client of its own).
        if not set(claims.aud) & set(client.audiences) and claims.client_id != client.id:
            return {}
        if claims.is_client:
            if not await self._clients.is_active(claims.client_id):
                return {}
        else:
            session = await self._sessions.live_session(claims.sid)
            if session is None or session.user_id != claims.sub:
                return {}
        raw = claims.claims
        body: dict[str, Any] = {
            "active": True,
            "sub": claims.sub,
            "client_id": claims.client_id or self._first_party,
            "exp": claims.exp,
            "iat": claims.iat,
            "iss": claims.iss,
            "aud": raw.get("aud"),
            "jti": claims.jti,
            "token_type": "Bearer",
        }
        if claims.is_client:
            body["scope"] = raw.get("scope", "")
        else:
            body["sid"] = claims.sid
            for name in ("auth_time", "amr", "nbf"):
                if name in raw:
                    body[name] = raw[name]
        return body

    async def _refresh_state(self, token: str) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_LENGTH:
            return {}
        session = await self._sessions.live_session_of(token)
        if session is None:
            return {}
        return {
            "active": True,
            "sub": session.user_id,
            "client_id": self._first_party,
            "exp": int(session.expires_at),
            "iat": int(session.last_used_at),
            "iss": self._issuer_url,
            "sid": session.id,
        }

    # --- revocation --------------------------------------------------------------------------

    async def revoke(self, authorization: str | None, form: Mapping[str, str]) -> None:
        """RFC 7009: ends the session of a person's refresh or access token. Holding the token
        is the proof; unknown, invalid and client tokens change nothing (and answer 200)."""
        client = await self._client(authorization, form)
        if client is None:
            self._public_client(form)
            if "client_id" not in form:
                raise OAuthError("invalid_client", "client_id is required", status=401)
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is required")
        claims = await self._claims(token)
        if claims is not None and not claims.is_client:
            await self._sessions.end_session_of_access_token(
                user_id=claims.sub, session_id=claims.sid
            )
        elif len(token) <= MAX_TOKEN_LENGTH:
            await self._sessions.logout(token, reason="token_revoked")
