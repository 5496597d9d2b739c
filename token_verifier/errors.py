from __future__ import annotations


def _challenge(realm: str | None, **params: str | None) -> str:
    """An RFC 6750 `Bearer` challenge; the values here never hold a quote (they are ours)."""
    parts = [f'{name}="{value}"' for name, value in (("realm", realm), *params.items()) if value]
    return "Bearer " + ", ".join(parts) if parts else "Bearer"


class TokenRejected(Exception):
    """A token that must not be accepted. `code` is the contract's error code
    (`token_missing`, `token_invalid`, `token_expired`, `token_revoked`); `detail` is safe to
    show."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def www_authenticate(self, realm: str, *, resource_metadata: str | None = None) -> str:
        """The RFC 6750 challenge for this rejection; `resource_metadata` is the RFC 9728
        metadata URL of the protected resource, when it publishes one."""
        if self.code == "token_missing":
            return _challenge(realm, resource_metadata=resource_metadata)
        return _challenge(
            realm,
            error="invalid_token",
            error_description=self.detail,
            resource_metadata=resource_metadata,
        )


class InsufficientScope(Exception):
    """A valid token without the scope a route needs: 403 `insufficient_scope` (RFC 6750 §3.1)."""

    code = "insufficient_scope"

    def __init__(self, scope: str) -> None:
        """`scope`: the scope needed, or several separated by spaces (all of them needed)."""
        self.scope = scope
        noun = "scopes" if " " in scope else "scope"
        self.detail = f"this request needs the {noun} {scope}"
        super().__init__(self.detail)

    def www_authenticate(self) -> str:
        return _challenge(None, error="insufficient_scope", scope=self.scope)
