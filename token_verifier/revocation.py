"""The seam for revocation (issue 23, not built yet): a list of revoked sessions and users that
a verifier keeps like its JWKS, fetched in the background, never asked over the network per
request.

`TokenVerifier(..., revocations=list)` asks `list.revoked(claims)` on every verification, a
cache hit included, so that a token verified before its session ended is refused as soon as the
list knows (401 `token_revoked`). Without a list nothing is asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from token_verifier.verifier import VerifiedClaims


class RevocationList(Protocol):
    def revoked(self, claims: VerifiedClaims) -> bool:
        """Whether the token's session (`claims.sid`) or user (`claims.sub`, a cut-off against
        `claims.iat`) is revoked. Called on the request path: in memory only, no I/O."""
        ...
