"""Calling another service as this service: an `httpx.Auth` that gets a client-credentials
token (RFC 6749 §4.4) from the platform's `/oauth/token`, shares it, and renews it before it
expires.

    auth = ClientCredentials("https://auth.example.com/oauth/token",
                             client_id="reports", client_secret=secret, scope="tasks:read")
    async with httpx.AsyncClient(auth=auth) as http:
        await http.get("https://todo.example.com/api/…")

- one token for every request; concurrent requests that find it missing or due share one
  token request (single flight);
- renewed `renew_before` seconds before `expires_in` runs out (at most half its lifetime), so
  a request never leaves with a token about to expire;
- a 401 `invalid_token` from the resource (its keys rotated, the token revoked) renews once and
  retries once;
- client authentication by `client_secret_basic`, or `private_key_jwt` (RFC 7523) with the
  client's private key (a joserfc key or a private JWK) signing a one-minute assertion.

The same is available from Authlib (`AsyncOAuth2Client`, README); this helper needs nothing
beyond httpx and joserfc, which the verifier already depends on.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from joserfc import jwk, jwt

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_S = 60
DEFAULT_EXPIRES_IN_S = 60  # when the server leaves out expires_in (RFC 6749 only recommends it)


class TokenRequestError(Exception):
    """The token endpoint refused or failed: `error` is its OAuth error code when it gave one."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(f"token request failed: {status} {error}")
        self.status = status
        self.error = error


@dataclass(frozen=True)
class _Token:
    value: str
    renew_at: float


class ClientCredentials(httpx.Auth):
    def __init__(
        self,
        token_url: str,
        *,
        client_id: str,
        client_secret: str | None = None,
        private_key: jwk.Key | dict[str, Any] | None = None,
        signing_alg: str = "ES256",
        scope: str | None = None,
        resource: str | None = None,
        renew_before: float = 60.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (client_secret is None) == (private_key is None):
            raise ValueError("give exactly one of client_secret and private_key")
        self._token_url = token_url
        self._client_id = client_id
        self._secret = client_secret
        self._key = jwk.import_key(private_key) if isinstance(private_key, dict) else private_key
        self._alg = signing_alg
        self._form = {"grant_type": "client_credentials"}
        if scope:
            self._form["scope"] = scope
        if resource:
            self._form["resource"] = resource
        self._renew_before = renew_before
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        self._clock = clock
        self._token: _Token | None = None
        self._lock = asyncio.Lock()
        self.requests_made = 0  # token requests sent (metrics, tests)

    async def access_token(self, *, rejected: str | None = None) -> str:
        """The current token, fetched first when there is none, it is due for renewal, or it is
        `rejected` (the one a resource just refused)."""
        token = self._token
        if token is not None and token.value != rejected and self._clock() < token.renew_at:
            return token.value
        async with self._lock:
            token = self._token  # another request may have renewed it while this one waited
            if token is None or token.value == rejected or self._clock() >= token.renew_at:
                token = self._token = await self._request_token()
            return token.value

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and "invalid_token" in response.headers.get(
            "www-authenticate", ""
        ):
            request.headers["Authorization"] = f"Bearer {await self.access_token(rejected=token)}"
            yield request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("ClientCredentials is for httpx.AsyncClient")
        yield request  # pragma: no cover (makes this a generator, as httpx expects)

    async def _request_token(self) -> _Token:
        form = dict(self._form)
        headers = {"Accept": "application/json"}
        if self._secret is not None:
            pair = f"{quote(self._client_id, safe='')}:{quote(self._secret, safe='')}"
            headers["Authorization"] = "Basic " + _base64(pair)
        else:
            form["client_assertion_type"] = ASSERTION_TYPE
            form["client_assertion"] = self._assertion()
        self.requests_made += 1
        response = await self._client.post(self._token_url, data=form, headers=headers)
        body = _json_object(response)
        if response.status_code != 200:
            error = body.get("error")
            raise TokenRequestError(response.status_code, error if isinstance(error, str) else "")
        value, expires_in = body.get("access_token"), body.get("expires_in", DEFAULT_EXPIRES_IN_S)
        if not isinstance(value, str) or not value:
            raise TokenRequestError(response.status_code, "no access_token in the response")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
            raise TokenRequestError(response.status_code, "expires_in malformed")
        lead = min(self._renew_before, expires_in / 2)
        return _Token(value, self._clock() + expires_in - lead)

    def _assertion(self) -> str:
        assert self._key is not None
        now = int(time.time())
        claims = {
            "iss": self._client_id,
            "sub": self._client_id,
            "aud": self._token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
            "jti": secrets.token_urlsafe(16),
        }
        header: dict[str, Any] = {"alg": self._alg, "typ": "JWT"}
        kid = self._key.kid
        if kid:
            header["kid"] = kid
        return jwt.encode(header, claims, self._key, algorithms=[self._alg])


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
