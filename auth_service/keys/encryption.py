"""Private keys at rest: AES-256-GCM under AUTH_KEY_ENCRYPTION_KEY, the key id bound as AAD."""

from __future__ import annotations

import base64
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class KeyDecryptionError(Exception):
    """The stored key cannot be opened with this key-encryption key (wrong key, or tampering)."""


class KeyEncryptor:
    def __init__(self, key_encryption_key: bytes) -> None:
        self._aead = AESGCM(key_encryption_key)

    def encrypt(self, kid: str, plaintext: bytes) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, kid.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, kid: str, blob: str) -> bytes:
        try:
            raw = base64.urlsafe_b64decode(blob.encode("ascii"))
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], kid.encode())
        except (InvalidTag, ValueError) as error:
            raise KeyDecryptionError(kid) from error
