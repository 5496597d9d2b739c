from __future__ import annotations


class TokenRejected(Exception):
    """A token that must not be accepted. `code` is the contract's error code
    (`token_missing`, `token_invalid`, `token_expired`); `detail` is safe to show."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def www_authenticate(self, realm: str) -> str:
        """The RFC 6750 challenge for this rejection."""
        if self.code == "token_missing":
            return f'Bearer realm="{realm}"'
        return f'Bearer realm="{realm}", error="invalid_token", error_description="{self.detail}"'
