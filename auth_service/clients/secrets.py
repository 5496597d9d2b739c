"""Client secrets: 256 random bits, shown once, kept only as HMAC-SHA256 under a key derived
from AUTH_KEY_ENCRYPTION_KEY. A random 256-bit secret cannot be guessed, so it needs no slow
hash: a keyed hash keeps a stolen table useless without the key, and costs microseconds on
every token request instead of an Argon2 verify."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_BYTES = 32
MAX_SECRET_LENGTH = 256


def new_secret() -> str:
    """URL-safe characters only, so it travels unchanged in a Basic header and a form."""
    return secrets.token_urlsafe(SECRET_BYTES)


class SecretHasher:
    def __init__(self, key_encryption_key: bytes) -> None:
        self._key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=b"authplatform oauth client secret v1",
        ).derive(key_encryption_key)

    def digest(self, secret: str) -> str:
        return hmac.new(
            self._key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256
        ).hexdigest()

    def matches(self, secret: str, digests: list[str]) -> bool:
        """Constant-time against each stored digest; every digest is compared."""
        presented = self.digest(secret)
        found = False
        for stored in digests:
            found |= hmac.compare_digest(presented, stored)
        return found
